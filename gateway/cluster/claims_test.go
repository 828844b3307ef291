package cluster

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"wagate/internal/redistest"
)

// t0 is the Redis time these tests start at (miniredis's TIME is settable).
var t0 = time.Unix(1_800_000_000, 0)

type world struct {
	now  time.Time
	mini *miniredis.Miniredis
	rdb  *redis.Client
	s    *Store
}

func newWorld(t *testing.T) *world {
	t.Helper()
	b := redistest.Mini(t)
	b.Mini.SetTime(t0)
	rdb := b.Client(t)
	return &world{now: t0, mini: b.Mini, rdb: rdb, s: mustStore(t, rdb, Options{Shards: 16})}
}

func (w *world) join(t *testing.T, name string) *Member {
	t.Helper()
	m, err := w.s.Join(context.Background(), name, name+":8080", Callbacks{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (w *world) advance(d time.Duration) { w.now = w.now.Add(d); w.mini.SetTime(w.now) }

func (w *world) epoch(t *testing.T, shard int) int64 {
	t.Helper()
	_, e, err := w.s.Holder(context.Background(), shard)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestAClaimRaisesTheEpochToTheMaxOfEpochPlusOneRedisTimeAndFloor(t *testing.T) {
	now := t0.Unix()
	cases := []struct {
		name  string
		prior int64 // the shard's stored epoch, 0 = never claimed
		floor int64
		want  int64
	}{
		{"never claimed: Redis time in seconds", 0, 0, now},
		{"claimed earlier this second: epoch+1", now, 0, now + 1},
		{"epoch ahead of the clock: epoch+1", now + 500, 0, now + 501},
		{"clock behind a single-process epoch: the floor", now - 10, now + 7, now + 7},
		{"floor below both: ignored", now + 3, now - 100, now + 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t)
			if c.prior != 0 {
				w.rdb.HSet(context.Background(), "{wagate}:epochs", "3", c.prior)
			}
			m := w.join(t, "gw-0")
			got, err := m.Claim(context.Background(), 3, c.floor)
			if err != nil || got != c.want {
				t.Fatalf("Claim = %d, %v; want %d", got, err, c.want)
			}
			if e := w.epoch(t, 3); e != c.want {
				t.Fatalf("stored epoch %d, want %d", e, c.want)
			}
		})
	}
}

func TestWhoMayClaimAShard(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		// setup leaves shard 5 in some state and returns the claimant
		setup     func(t *testing.T, w *world) *Member
		wantErr   error
		wantRaise bool // the epoch grows
	}{
		{"nobody holds it: claimed", func(t *testing.T, w *world) *Member {
			return w.join(t, "gw-0")
		}, nil, true},
		{"the claimant already holds it: same epoch", func(t *testing.T, w *world) *Member {
			m := w.join(t, "gw-0")
			mustClaim(t, m, 5)
			return m
		}, nil, false},
		{"a live member holds it: refused", func(t *testing.T, w *world) *Member {
			mustClaim(t, w.join(t, "gw-1"), 5)
			return w.join(t, "gw-0")
		}, ErrHeld, false},
		{"its holder's lease expired: taken over", func(t *testing.T, w *world) *Member {
			mustClaim(t, w.join(t, "gw-1"), 5)
			w.advance(10*time.Second + time.Millisecond)
			return w.join(t, "gw-0")
		}, nil, true},
		{"its holder released it: claimed", func(t *testing.T, w *world) *Member {
			h := w.join(t, "gw-1")
			e := mustClaim(t, h, 5)
			if err := h.Release(ctx, 5, e); err != nil {
				t.Fatal(err)
			}
			return w.join(t, "gw-0")
		}, nil, true},
		{"its holder left: claimed", func(t *testing.T, w *world) *Member {
			h := w.join(t, "gw-1")
			mustClaim(t, h, 5)
			if err := h.Leave(ctx); err != nil {
				t.Fatal(err)
			}
			return w.join(t, "gw-0")
		}, nil, true},
		{"the claimant's own lease expired in Redis: fenced", func(t *testing.T, w *world) *Member {
			m := w.join(t, "gw-0")
			w.advance(10 * time.Second)
			return m
		}, ErrFenced, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t)
			m := c.setup(t, w)
			before := w.epoch(t, 5)
			e, err := m.Claim(ctx, 5, 0)
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("Claim: err %v, want %v", err, c.wantErr)
			}
			after := w.epoch(t, 5)
			if raised := after > before; raised != c.wantRaise {
				t.Fatalf("epoch %d -> %d, want raised=%v", before, after, c.wantRaise)
			}
			if err == nil {
				if holder, _, _ := w.s.Holder(ctx, 5); holder != m.ID() || e != after {
					t.Fatalf("holder %q at %d, want %q at %d", holder, after, m.ID(), e)
				}
				if got := heldShards(m)[5]; got != e {
					t.Fatalf("member believes it holds shard 5 at %d, want %d", got, e)
				}
			}
		})
	}
}

func TestReleaseBumpAndFenceAreCompareAndSetOnHolderAndEpoch(t *testing.T) {
	ctx := context.Background()
	type op func(m *Member, shard int, epoch int64) error
	release := func(m *Member, k int, e int64) error { return m.Release(ctx, k, e) }
	bump := func(m *Member, k int, e int64) error { _, err := m.Bump(ctx, k, e); return err }
	fence := func(m *Member, k int, e int64) error {
		ok, err := m.Fence(ctx, k, e)
		if err == nil && !ok {
			err = ErrNotHolder
		}
		return err
	}
	ops := map[string]op{"release": release, "bump": bump, "fence": fence}
	cases := []struct {
		name string
		// who acts and with which epoch, given the holder h at epoch e and another live member o
		act  func(h, o *Member, e int64) (*Member, int64)
		want error
	}{
		{"the holder at the current epoch", func(h, o *Member, e int64) (*Member, int64) { return h, e }, nil},
		{"the holder with an older epoch", func(h, o *Member, e int64) (*Member, int64) { return h, e - 1 }, ErrNotHolder},
		{"the holder with a newer epoch", func(h, o *Member, e int64) (*Member, int64) { return h, e + 1 }, ErrNotHolder},
		{"another member with the current epoch", func(h, o *Member, e int64) (*Member, int64) { return o, e }, ErrNotHolder},
	}
	for name, do := range ops {
		for _, c := range cases {
			t.Run(name+": "+c.name, func(t *testing.T) {
				w := newWorld(t)
				h, o := w.join(t, "gw-0"), w.join(t, "gw-1")
				e := mustClaim(t, h, 2)
				who, epoch := c.act(h, o, e)
				if err := do(who, 2, epoch); !errors.Is(err, c.want) {
					t.Fatalf("err %v, want %v", err, c.want)
				}
				holder, stored, _ := w.s.Holder(ctx, 2)
				switch {
				case c.want != nil && (holder != h.ID() || stored != e):
					t.Fatalf("a refused %s changed the shard: holder %q epoch %d", name, holder, stored)
				case c.want == nil && name == "release" && (holder != "" || stored != e):
					t.Fatalf("after release: holder %q epoch %d, want none at %d (epochs stay)", holder, stored, e)
				case c.want == nil && name == "bump" && (holder != h.ID() || stored != e+1 || heldShards(h)[2] != e+1):
					t.Fatalf("after bump: holder %q epoch %d (member thinks %d), want %q at %d", holder, stored, heldShards(h)[2], h.ID(), e+1)
				}
			})
		}
	}
}

func TestRenewExtendsTheLeaseAndReportsShardsThatChangedUnderTheHolder(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	var lost []int
	m, err := w.s.Join(ctx, "gw-0", "", Callbacks{OnLost: func(k int, _ int64) { lost = append(lost, k) }})
	if err != nil {
		t.Fatal(err)
	}
	mustClaim(t, m, 1)
	mustClaim(t, m, 2)
	w.advance(9 * time.Second)
	if got, err := m.Renew(ctx); err != nil || len(got) != 0 {
		t.Fatalf("Renew = %v, %v; want no loss", got, err)
	}
	w.advance(9 * time.Second) // 18 s after the join, 9 s after the renew: still live
	if live, _ := w.s.Live(ctx); len(live) != 1 || live[0].ID != m.ID() || live[0].Name != "gw-0" {
		t.Fatalf("live members %+v, want only %s", live, m.ID())
	}
	// A Redis failover that lost writes can hand shard 2 to someone else behind the holder's back.
	w.rdb.HSet(ctx, "{wagate}:holders", "2", "gw-9#99")
	got, err := m.Renew(ctx)
	if err != nil || len(got) != 1 || got[0] != 2 || len(lost) != 1 || lost[0] != 2 {
		t.Fatalf("Renew = %v, %v (OnLost saw %v); want shard 2 lost", got, err, lost)
	}
	if _, held := heldShards(m)[2]; held {
		t.Fatal("the member still believes it holds shard 2")
	}
	if _, held := heldShards(m)[1]; !held {
		t.Fatal("the member dropped shard 1, which it still holds")
	}
}

func TestJoinGivesEveryStartANewIncarnation(t *testing.T) {
	w := newWorld(t)
	a, b := w.join(t, "gw-0"), w.join(t, "gw-0")
	if a.ID() == b.ID() || a.Name() != b.Name() {
		t.Fatalf("two joins of gw-0: ids %q and %q, names %q and %q", a.ID(), b.ID(), a.Name(), b.Name())
	}
}

func mustClaim(t *testing.T, m *Member, shard int) int64 {
	t.Helper()
	e, err := m.Claim(context.Background(), shard, 0)
	if err != nil {
		t.Fatalf("claim of shard %d by %s: %v", shard, m.ID(), err)
	}
	return e
}

// A suspended VM's monotonic clock stands still, so the member's own renew deadline has not passed
// when it wakes up; Redis's clock moved on and refuses the renew, which fences the member.
func TestARenewAfterTheLeaseExpiredInRedisIsRefused(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	m, err := w.s.Join(ctx, "gw-0", "", Callbacks{})
	if err != nil {
		t.Fatal(err)
	}
	e := mustClaim(t, m, 4)
	w.advance(10 * time.Second) // the lease ends at exactly join + TTL
	if _, err := m.Renew(ctx); !errors.Is(err, ErrFenced) || !strings.Contains(err.Error(), "expired in Redis") {
		t.Fatalf("renew after the lease expired in Redis: err %v, want ErrFenced (expired in Redis)", err)
	}
	if !errors.Is(m.Err(), ErrFenced) || m.HeldCount() != 0 {
		t.Fatalf("after the refused renew: err %v, member still holds %v", m.Err(), heldShards(m))
	}
	if ok, _ := w.s.Fence(ctx, m.ID(), 4, e); ok {
		t.Fatal("Fence still says the expired member holds shard 4")
	}
	if live, _ := w.s.Live(ctx); len(live) != 0 {
		t.Fatalf("live members %+v, want none", live)
	}
}
