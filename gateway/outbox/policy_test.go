package outbox

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2/server"

	"wagate/gateway/redisx"
	"wagate/internal/redistest"
)

// What a read of Redis's maxmemory-policy changes, and what the keeper says about it.
func TestAPolicyReadIsLoggedOnlyWhenItStartsOrStopsEndangeringTheOutbox(t *testing.T) {
	none := policyState{}
	safe := policyState{policy: "noeviction"}
	lru := policyState{policy: "allkeys-lru", unsafe: true}
	cases := []struct {
		name   string
		prev   policyState
		policy string
		read   bool
		want   policyState
		news   policyNews
	}{
		{"the first read finds noeviction", none, "noeviction", true, safe, policyUnchanged},
		{"the first read finds a volatile policy", none, "volatile-lru", true, policyState{policy: "volatile-lru"}, policyUnchanged},
		{"the first read finds an evicting policy", none, "allkeys-lru", true, lru, policyEvicting},
		{"switched at runtime to allkeys-lru", safe, "allkeys-lru", true, lru, policyEvicting},
		{"still allkeys-lru: said once", lru, "allkeys-lru", true, lru, policyUnchanged},
		{"from one evicting policy to another: said again", lru, "allkeys-random", true, policyState{policy: "allkeys-random", unsafe: true}, policyEvicting},
		{"set back to noeviction", lru, "noeviction", true, safe, policySafeAgain},
		{"a failed read keeps the evicting policy", lru, "", false, lru, policyUnchanged},
		{"a failed read keeps the safe policy", safe, "", false, safe, policyUnchanged},
		{"a server that never tells (miniredis) is not taken for evicting", none, "", false, none, policyUnchanged},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, news := readPolicy(c.prev, c.policy, c.read)
			if got != c.want || news != c.news {
				t.Fatalf("readPolicy(%+v, %q, %v) = %+v, %d; want %+v, %d", c.prev, c.policy, c.read, got, news, c.want, c.news)
			}
		})
	}
}

// miniConfig gives a miniredis the CONFIG GET/SET of maxmemory-policy a redis-server has
// (miniredis has no CONFIG), starting at noeviction, so that the same test switches both.
func miniConfig(t *testing.T, b *redistest.Backend) {
	t.Helper()
	var mu sync.Mutex
	policy := "noeviction"
	err := b.Mini.Server().Register("CONFIG", func(c *server.Peer, _ string, args []string) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case len(args) == 2 && strings.EqualFold(args[0], "GET") && args[1] == "maxmemory-policy":
			c.WriteLen(2)
			c.WriteBulk("maxmemory-policy")
			c.WriteBulk(policy)
		case len(args) == 3 && strings.EqualFold(args[0], "SET") && args[1] == "maxmemory-policy":
			policy = args[2]
			c.WriteOK()
		default:
			c.WriteError("ERR this test's CONFIG knows only maxmemory-policy")
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

// syncBuffer is a log sink the keeper writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Issue 19 #5: batch mode checked Redis's maxmemory-policy only at start; an operator's CONFIG SET
// maxmemory-policy allkeys-lru while the gateway ran went unnoticed until memory pressure evicted
// the outbox. The running keeper now notices within PolicyCheck, logs what to set, and reports it
// (EvictionRisk: /readyz; EvictionPolicyUnsafe: the metric) until the policy is safe again.
func TestAPolicySwitchedAtRuntimeToAnEvictingOneIsNoticedUntilItIsSafeAgain(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		if b.Mini != nil {
			miniConfig(t, b)
		}
		ctx := context.Background()
		var logs syncBuffer
		o, err := New(ctx, b.Client(t), Config{Consumer: "gw-a", PolicyCheck: 20 * time.Millisecond,
			Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		o.Start(ctx)
		defer o.Close()
		admin := b.Client(t)
		time.Sleep(100 * time.Millisecond) // a few checks at noeviction
		if err := o.EvictionRisk(); err != nil || o.EvictionPolicyUnsafe() {
			t.Fatalf("at noeviction: risk %v, unsafe %v; want none", err, o.EvictionPolicyUnsafe())
		}

		if err := admin.ConfigSet(ctx, "maxmemory-policy", "allkeys-lru").Err(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the keeper to notice allkeys-lru", o.EvictionPolicyUnsafe)
		err = o.EvictionRisk()
		if !errors.Is(err, redisx.ErrEvictingPolicy) || !strings.Contains(err.Error(), "maxmemory-policy noeviction") || !strings.Contains(err.Error(), b.Addr) {
			t.Fatalf("risk %v; want ErrEvictingPolicy naming %s and saying what to set", err, b.Addr)
		}
		time.Sleep(100 * time.Millisecond) // more checks at allkeys-lru: one ERROR line, not one per check
		if n := strings.Count(logs.String(), "level=ERROR"); n != 1 || !strings.Contains(logs.String(), "policy=allkeys-lru") {
			t.Fatalf("%d ERROR lines; want one naming allkeys-lru:\n%s", n, logs.String())
		}

		if err := admin.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the keeper to notice noeviction again", func() bool { return !o.EvictionPolicyUnsafe() })
		if err := o.EvictionRisk(); err != nil {
			t.Fatalf("back at noeviction: risk %v; want none", err)
		}
		if !strings.Contains(logs.String(), "keeps the outbox again") {
			t.Fatalf("no line says the policy is safe again:\n%s", logs.String())
		}
	})
}

// The embedded miniredis (no CONFIG, nothing in INFO) never tells its policy: never an alarm.
func TestAServerThatDoesNotTellItsPolicyIsNeverTakenForEvicting(t *testing.T) {
	b := redistest.Mini(t)
	var logs syncBuffer
	o, err := New(context.Background(), b.Client(t), Config{Consumer: "gw-a", PolicyCheck: 10 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.CheckEvictionPolicy(context.Background()); err == nil {
		t.Fatal("reading miniredis's policy succeeded; want the read's error")
	}
	o.Start(context.Background())
	time.Sleep(60 * time.Millisecond)
	o.Close()
	if err := o.EvictionRisk(); err != nil || o.EvictionPolicyUnsafe() {
		t.Fatalf("risk %v, unsafe %v; want none", err, o.EvictionPolicyUnsafe())
	}
	if strings.Contains(logs.String(), "level=ERROR") || strings.Contains(logs.String(), "level=WARN") {
		t.Fatalf("logged about a policy it could not read:\n%s", logs.String())
	}
}
