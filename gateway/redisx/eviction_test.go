package redisx

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"wagate/internal/redistest"
)

func TestEvictionSafe(t *testing.T) {
	cases := []struct {
		policy string
		safe   bool
	}{
		{"noeviction", true},
		{"volatile-lru", true},
		{"volatile-lfu", true},
		{"volatile-random", true},
		{"volatile-ttl", true},
		{"NoEviction", true},
		{"allkeys-lru", false},
		{"allkeys-lfu", false},
		{"allkeys-random", false},
		{"", false},
	}
	for _, c := range cases {
		if got := EvictionSafe(c.policy); got != c.safe {
			t.Errorf("EvictionSafe(%q) = %v; want %v", c.policy, got, c.safe)
		}
	}
}

// Issue 19 #5: with maxmemory + allkeys-lru the outbox stream was evicted like a cache key.
func TestARealRedisThatCanEvictTheOutboxIsRefusedWithWhatToSet(t *testing.T) {
	b := redistest.Real(t)
	ctx := context.Background()
	c, err := Open(ctx, b.URL(), 0, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.CheckEvictionPolicy(ctx); err != nil {
		t.Fatalf("default policy (noeviction) refused: %v", err)
	}
	for policy, refused := range map[string]bool{"allkeys-lru": true, "allkeys-lfu": true, "volatile-lru": false} {
		if err := c.Client.ConfigSet(ctx, "maxmemory-policy", policy).Err(); err != nil {
			t.Fatal(err)
		}
		err := c.CheckEvictionPolicy(ctx)
		if refused != (err != nil) {
			t.Fatalf("%s: CheckEvictionPolicy = %v; want refused %v", policy, err, refused)
		}
		if refused && (!errors.Is(err, ErrEvictingPolicy) || !strings.Contains(err.Error(), "maxmemory-policy noeviction")) {
			t.Fatalf("%s: error %q does not say what to set", policy, err)
		}
	}
}

func TestAMiniredisThatCannotTellItsPolicyIsAccepted(t *testing.T) {
	b := redistest.Mini(t)
	c, err := Open(context.Background(), b.URL(), 0, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.CheckEvictionPolicy(context.Background()); err != nil {
		t.Fatalf("miniredis (never evicts, no CONFIG) refused: %v", err)
	}
}
