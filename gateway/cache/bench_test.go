package cache

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"wagate/gateway/laravel"
	"wagate/internal/redistest"
)

// alwaysKnown answers every lookup without a network.
type alwaysKnown struct{}

func (alwaysKnown) GetSession(_ context.Context, sid string) (laravel.SessionInfo, error) {
	return laravel.SessionInfo{SessionID: sid, EstadoQR: laravel.StatusConnected, Enabled: true, StatusVersion: 1}, nil
}

// coldSessions numbers the session ids BenchmarkRead's L3 case reads once.
var coldSessions atomic.Int64

// BenchmarkRead measures one State read answered by each level: L1 (in-process), L2 (a Redis
// HGETALL) and L3 (a miss in both, an in-memory Laravel lookup, and the Redis write of its answer).
func BenchmarkRead(b *testing.B) {
	redistest.EachBenchmark(b, func(b *testing.B, be *redistest.Backend) {
		ctx := context.Background()
		clk := newClock()
		c := newCache(b, be, alwaysKnown{}, clk, "gw-bench")
		if err := c.Record(ctx, statusEvent("hot", 1, laravel.StatusConnected)); err != nil {
			b.Fatal(err)
		}
		b.Run("L1", func(b *testing.B) {
			if _, err := c.State(ctx, "hot"); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if s, err := c.State(ctx, "hot"); err != nil || s.Level != "l1" {
					b.Fatalf("%+v %v", s, err)
				}
			}
		})
		b.Run("L2", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.l1.Invalidate("hot")
				if s, err := c.State(ctx, "hot"); err != nil || s.Level != "l2" {
					b.Fatalf("%+v %v", s, err)
				}
			}
		})
		b.Run("L3", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				// Ids never read before in this process: with -count the Redis server (and
				// its copies of earlier runs' cold ids) is shared.
				id := fmt.Sprintf("cold-%d", coldSessions.Add(1))
				if s, err := c.State(ctx, id); err != nil || s.Level != "l3" {
					b.Fatalf("%+v %v", s, err)
				}
			}
		})
	})
}

// BenchmarkRecord measures the write-through of one event (L1 update, L2 version-guarded write,
// invalidation publish).
func BenchmarkRecord(b *testing.B) {
	redistest.EachBenchmark(b, func(b *testing.B, be *redistest.Backend) {
		c := newCache(b, be, alwaysKnown{}, newClock(), "gw-bench")
		ctx := context.Background()
		b.ReportAllocs()
		v := int64(0)
		for b.Loop() {
			v++
			if err := c.Record(ctx, statusEvent(fmt.Sprintf("s%d", v%100), v, laravel.StatusPending)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkExpiredOwnedStatus measures serving a read of this gateway's own connected session
// once its status has expired (each op moves the clock past ConnectionTTL), with Laravel's
// session lookup served over loopback HTTP by the real laravel.Client: "lookup" is the cache
// without a live source (every expiry asks Laravel), "renewed" with the session manager's live
// state (renew.go: a Redis renewal, and a lookup once per SessionTTL for Laravel's flag).
// lookups/op is Laravel's share of the ops.
func BenchmarkExpiredOwnedStatus(b *testing.B) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"session_id":"hot","estado_qr":"connected","status_version":1,"enabled":true}`))
	}))
	b.Cleanup(srv.Close)
	client, err := laravel.NewClient(laravel.ClientConfig{BaseURL: srv.URL, Token: "t"})
	if err != nil {
		b.Fatal(err)
	}
	for _, mode := range []string{"lookup", "renewed"} {
		b.Run(mode, func(b *testing.B) {
			ctx := context.Background()
			clk := newClock()
			c := newCache(b, redistest.Real(b), client, clk, "gw-bench")
			if mode == "renewed" {
				c.RenewFrom(liveSessions{"hot": {SessionID: "hot", Status: laravel.StatusConnected, Version: 1, Connected: true}})
			}
			if err := c.Record(ctx, statusEvent("hot", 1, laravel.StatusConnected)); err != nil {
				b.Fatal(err)
			}
			before := served.Load()
			b.ReportAllocs()
			for b.Loop() {
				clk.Advance(DefaultConnectionTTL + time.Second)
				if s, err := c.State(ctx, "hot"); err != nil || !s.Active() {
					b.Fatalf("%+v %v", s, err)
				}
			}
			b.ReportMetric(float64(served.Load()-before)/float64(b.N), "lookups/op")
		})
	}
}
