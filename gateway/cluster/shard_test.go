package cluster

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"wagate/internal/redistest"
)

// The shard of a session must never change between releases: these values are pinned (and were
// checked against an independent implementation of FNV-1a 64 + splitmix64).
func TestShardOfASessionIsPinnedForever(t *testing.T) {
	cases := []struct {
		session string
		shards  int
		want    int
	}{
		{"", 1024, 155},
		{"a", 1024, 248},
		{"b", 1024, 5},
		{"session-1", 1024, 901},
		{"session-2", 1024, 499},
		{"5511987654321", 1024, 802},
		{"laravel-user-42", 1024, 377},
		{"ü", 1024, 26},
		{"session-1", 7, 0},
		{"anything", 1, 0},
	}
	for _, c := range cases {
		if got := Shard(c.session, c.shards); got != c.want {
			t.Errorf("Shard(%q, %d) = %d, want %d", c.session, c.shards, got, c.want)
		}
	}
}

func TestShardsSpreadSequentialSessionIDsEvenly(t *testing.T) {
	const n, shards = 200_000, 1024
	counts := make([]int, shards)
	for i := range n {
		counts[Shard("session-"+strconv.Itoa(i), shards)]++
	}
	mean := n / shards // 195
	for k, c := range counts {
		if c < mean/2 || c > mean*2 {
			t.Fatalf("shard %d has %d sessions, mean %d: the hash clusters", k, c, mean)
		}
	}
}

func TestShardCountIsStoredAtFirstStartAndADifferentOneIsRefused(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Mini(t).Client(t)
	first := mustStore(t, rdb, Options{})
	if err := first.CheckShards(ctx); err != nil {
		t.Fatalf("first start: %v", err)
	}
	if v := rdb.Get(ctx, "{wagate}:shards").Val(); v != "1024" {
		t.Fatalf("stored shard count %q, want the default 1024", v)
	}
	if err := mustStore(t, rdb, Options{Shards: 1024}).CheckShards(ctx); err != nil {
		t.Fatalf("a second replica with the same count: %v", err)
	}
	err := mustStore(t, rdb, Options{Shards: 512}).CheckShards(ctx)
	if !errors.Is(err, ErrShardCount) {
		t.Fatalf("a replica with 512 shards on a 1024 installation: err %v, want ErrShardCount", err)
	}
	for _, want := range []string{"512", "1024", "set the shard count to 1024"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q does not say %q", err, want)
		}
	}
}

func TestOptionsRefuseADeadlineThatOutlivesTheLease(t *testing.T) {
	rdb := redistest.Mini(t).Client(t)
	cases := []struct {
		name string
		opts Options
		ok   bool
	}{
		{"defaults", Options{}, true},
		{"deadline equal to the lease", Options{LeaseTTL: 6e9, RenewDeadline: 6e9}, false},
		{"interval equal to the deadline", Options{RenewInterval: 6e9, RenewDeadline: 6e9}, false},
		{"negative shards", Options{Shards: -1}, false},
	}
	for _, c := range cases {
		_, err := New(rdb, c.opts)
		if (err == nil) != c.ok {
			t.Errorf("%s: err %v, want ok=%v", c.name, err, c.ok)
		}
	}
}
