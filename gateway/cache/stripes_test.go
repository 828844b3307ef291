package cache

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"wagate/gateway/laravel"
	"wagate/internal/redistest"
)

// otherStripe returns a session id whose Records are counted apart from sid's.
func otherStripe(c *Cache, sid string) string {
	for i := 0; ; i++ {
		if o := fmt.Sprintf("other-%d", i); c.recordedOf(o) != c.recordedOf(sid) {
			return o
		}
	}
}

// A read keeps what it read in L1 unless its own session was written meanwhile: the Records of
// other sessions say nothing about it. (TestAReadRacingTheOwnersWriteDoesNotKeepTheOlderStatusInL1
// is the other half: a Record of the read's own session drops it.) With one Record counter for
// every session, a read racing any session's Record was dropped and the next poll read Redis.
func TestARecordOfAnotherSessionDuringAReadKeepsTheReadInL1(t *testing.T) {
	c, hook, clk := cacheWithWriteDuringRead(t)
	ctx := context.Background()
	if err := c.Record(ctx, statusEvent("s1", 1, laravel.StatusConnected)); err != nil { // L2 only: nothing in L1 yet
		t.Fatal(err)
	}
	other := otherStripe(c, "s1")
	hook.during = func() {
		if err := c.Record(ctx, statusEvent(other, 1, laravel.StatusPending)); err != nil {
			t.Error(err)
		}
	}
	if s := mustState(t, c, "s1"); s.Level != "l2" || s.Status != laravel.StatusConnected {
		t.Fatalf("first read: %+v; want connected from l2", s)
	}
	clk.Advance(time.Second)
	if s := mustState(t, c, "s1"); s.Level != "l1" || s.Status != laravel.StatusConnected {
		t.Fatalf("next read: %+v; want connected from l1 (%s's Record during the first read dropped it from L1)", s, other)
	}
}

// BenchmarkReadsWhileOtherSessionsRecord measures polls of 1000 owned sessions (each first read
// from L2, then from L1) while other sessions' events are recorded without pause, as while many
// sessions pair: l2-reads/op is the share of reads that went to Redis.
func BenchmarkReadsWhileOtherSessionsRecord(b *testing.B) {
	redistest.EachBenchmark(b, func(b *testing.B, be *redistest.Backend) {
		ctx := context.Background()
		c := newCache(b, be, alwaysKnown{}, newClock(), "gw-bench")
		const sessions = 1000
		ids := make([]string, sessions)
		for i := range ids {
			ids[i] = fmt.Sprintf("polled-%d", i)
			if err := c.Record(ctx, statusEvent(ids[i], 1, laravel.StatusConnected)); err != nil {
				b.Fatal(err)
			}
		}
		rctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() {
			for v := int64(1); rctx.Err() == nil; v++ {
				_ = c.Record(rctx, statusEvent(fmt.Sprintf("pairing-%d", v%sessions), v, laravel.StatusPending))
			}
		})
		c.FlushL1()
		before := c.Counters()
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.State(ctx, ids[rand.IntN(sessions)]); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.StopTimer()
		stop()
		wg.Wait()
		b.ReportMetric(float64(c.Counters().L1Misses-before.L1Misses)/float64(b.N), "l2-reads/op")
	})
}
