package redisx

import (
	"bytes"
	"context"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"wagate/internal/redistest"
)

func TestOpenWithoutURLEmbedsMiniredisAndSaysSo(t *testing.T) {
	var logs bytes.Buffer
	c, err := Open(context.Background(), "", 0, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.Embedded {
		t.Fatal("Embedded = false without a URL")
	}
	if !strings.Contains(logs.String(), "EMBEDDED miniredis") || !strings.Contains(logs.String(), "no persistence") {
		t.Fatalf("log does not warn about the embedded mode: %s", logs.String())
	}
	reason, err := c.Ready(context.Background())
	if err != nil || reason != EmbeddedReason {
		t.Fatalf("Ready = %q, %v; want %q", reason, err, EmbeddedReason)
	}
}

func TestOpenWithURLConnectsToRealRedis(t *testing.T) {
	b := redistest.Real(t)
	c, err := Open(context.Background(), b.URL(), 0, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Embedded {
		t.Fatal("Embedded = true with a URL")
	}
	if reason, err := c.Ready(context.Background()); err != nil || reason != "redis: ok" {
		t.Fatalf("Ready = %q, %v", reason, err)
	}
	b.Real.Stop()
	if _, err := c.Ready(context.Background()); err == nil {
		t.Fatal("Ready succeeded with the server stopped")
	}
}

func TestOpenFailsOnUnreachableURL(t *testing.T) {
	if _, err := Open(context.Background(), "redis://127.0.0.1:1", 0, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("Open succeeded against a closed port")
	}
}

func TestEmbeddedKeysExpireWithTheWallClock(t *testing.T) {
	c, err := Open(context.Background(), "", 0, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if err := c.Client.Set(ctx, "k", "v", 50*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	// No assertion on how soon: only that the key does expire without anyone fast-forwarding.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		n, err := c.Client.Exists(ctx, "k").Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("a key with a 50 ms TTL still exists after 10 s")
		}
	}
}

// A pool is another client of the same Redis: what one writes the other reads, its connections
// are its own (the shared client's only connection held in a blocking command does not stop it),
// and the Conn's Close closes it.
func TestAPoolIsAClientOfTheSameRedisWithConnectionsOfItsOwn(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		c, err := Open(ctx, b.URL()+"?pool_size=1&pool_timeout=5s", 0, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		p := c.Pool()
		if err := p.Set(ctx, "k", "from the pool", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if v, err := c.Client.Get(ctx, "k").Result(); err != nil || v != "from the pool" {
			t.Fatalf("shared client reads %q, %v", v, err)
		}
		// The shared client's one connection waits in BLPOP; the pool still answers at once.
		held := make(chan error, 1)
		go func() { held <- c.Client.BLPop(ctx, 2*time.Second, "nothing").Err() }()
		time.Sleep(100 * time.Millisecond)
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if err := p.Ping(pctx).Err(); err != nil {
			t.Fatalf("the pool waited for the shared client's connection: %v", err)
		}
		<-held
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if err := p.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "closed") {
			t.Fatalf("pool after Close: Ping = %v, want closed", err)
		}
	})
}

// When every session reconnects at once, thousands of cache writes and outbox appends wait for a
// Redis connection while each round trip is slow (the gateway's CPU is busy with handshakes).
// The pool Open makes for a URL without pool_size carries such a storm within the callers'
// deadlines; go-redis's own default on a gateway with one CPU (10 connections) does not, which
// the second case shows (bench-scale: 7,648 of 10,000 disconnect events refused by the outbox).
func TestOpenPoolCarriesAStormOfSlowRoundTripsWithinTheDeadline(t *testing.T) {
	const (
		callers   = 1000
		roundTrip = 40 * time.Millisecond
		deadline  = 2 * time.Second // 1000 x 40 ms over 10 connections: 4 s; over 128: 0.3 s
	)
	storm := func(t *testing.T, query string) (failed, pool int) {
		b := redistest.Mini(t)
		proxy := redistest.StartFreezingProxy(t, b.Addr)
		c, err := Open(context.Background(), "redis://"+proxy.Addr()+query, 0, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		proxy.Delay(roundTrip)
		var wg sync.WaitGroup
		var failures atomic.Int64
		for range callers {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), deadline)
				defer cancel()
				if err := c.Client.Incr(ctx, "events").Err(); err != nil {
					failures.Add(1)
				}
			})
		}
		wg.Wait()
		return int(failures.Load()), c.Client.Options().PoolSize
	}
	t.Run("the default pool", func(t *testing.T) {
		if failed, pool := storm(t, ""); failed != 0 {
			t.Fatalf("%d of %d calls missed their %s deadline with the default pool (%d connections)", failed, callers, deadline, pool)
		}
	})
	t.Run("go-redis's default on one CPU", func(t *testing.T) {
		if failed, _ := storm(t, "?pool_size=10"); failed == 0 {
			t.Fatalf("every call made its deadline over 10 connections: the storm does not test the pool")
		}
	})
}

func TestOpenKeepsThePoolSizeTheURLSets(t *testing.T) {
	b := redistest.Mini(t)
	for _, tc := range []struct {
		query string
		want  int
	}{
		{"", max(DefaultPoolSize, 10*runtime.GOMAXPROCS(0))},
		{"?pool_size=7", 7},
	} {
		c, err := Open(context.Background(), b.URL()+tc.query, 0, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Client.Options().PoolSize; got != tc.want {
			t.Errorf("URL %q: pool size %d, want %d", b.URL()+tc.query, got, tc.want)
		}
		if got := c.Pool().Options().PoolSize; got != tc.want {
			t.Errorf("URL %q: the status reads' pool size %d, want %d", b.URL()+tc.query, got, tc.want)
		}
		c.Close()
	}
}
