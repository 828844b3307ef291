package batch

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"wagate/gateway/delivery/retrybudget"
	"wagate/gateway/event"
	"wagate/gateway/laravel"
	"wagate/gateway/outbox"
	"wagate/internal/redistest"
)

// TestARetryTheBudgetRefusesWaitsAndIsDeliveredNotDropped: Laravel answers every batch 503 while
// new batches keep coming. The retries that reach it stay within the budget's bound (burst +
// floor per second + a fifth of the first attempts) at every step, the ones refused are counted
// as held and stay in flight, and once Laravel heals every event is applied: nothing dropped,
// nothing dead-lettered.
func TestARetryTheBudgetRefusesWaitsAndIsDeliveredNotDropped(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		budget := retrybudget.Config{Percent: 20, MinPerSecond: 1, Burst: 1}
		cfg := Config{BatchSize: 1, MaxInFlight: 4, Breaker: BreakerConfig{Failures: 1 << 20}, RetryBudget: budget}
		f := newFixture(t, b, cfg, outbox.Config{})
		var failing atomic.Bool
		failing.Store(true)
		f.lv.fault = func(int, call) (error, bool) {
			if failing.Load() {
				return &laravel.StatusError{Status: http.StatusServiceUnavailable}, false
			}
			return nil, false
		}
		start := f.clk.Now()
		const sessions = 12
		for i := range sessions {
			f.deliver(t, ev(fmt.Sprintf("s%d", i), 1, event.KindQR, "q"))
			f.poll(t)
			f.clk.Advance(100 * time.Millisecond)
		}
		for range 40 { // 4 s of Laravel failing every answer
			f.poll(t)
			f.clk.Advance(100 * time.Millisecond)
			m := f.metrics()
			if bound := budget.Bound(f.clk.Now().Sub(start), float64(m.FirstAttempts)); float64(m.Retried) > bound {
				t.Fatalf("%d retries after %d first attempts in %s; the budget's bound is %.1f", m.Retried, m.FirstAttempts, f.clk.Now().Sub(start), bound)
			}
		}
		m := f.metrics()
		if m.FirstAttempts != sessions || m.RetriesHeld == 0 || m.Retried == 0 {
			t.Fatalf("metrics %+v; want %d first attempts, some retries sent and some held back", m, sessions)
		}
		if int64(len(f.lv.Calls())) != m.FirstAttempts+m.Retried {
			t.Fatalf("%d calls; want first attempts + retries = %d", len(f.lv.Calls()), m.FirstAttempts+m.Retried)
		}
		failing.Store(false)
		for range 600 { // up to 60 s: the backoff of the held retries, spent at the budget's floor
			if f.outboxLength(t) == 0 {
				break
			}
			f.poll(t)
			f.clk.Advance(100 * time.Millisecond)
		}
		for i := range sessions {
			if _, ok := f.lv.Applied(event.KindQR, fmt.Sprintf("s%d", i)); !ok {
				t.Errorf("s%d's QR never applied", i)
			}
		}
		if m := f.metrics(); m.Pending != 0 || m.DeadLettered != 0 || m.InFlight != 0 {
			t.Fatalf("metrics %+v; want every event applied: outbox empty, nothing dead-lettered or in flight", m)
		}
	})
}

// TestTheFinalAttemptAtShutdownIsNotBudgeted: Close sends every batch in flight once, retries
// included, whatever the budget holds; what fails stays pending for the next start.
func TestTheFinalAttemptAtShutdownIsNotBudgeted(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		cfg := Config{BatchSize: 1, Breaker: BreakerConfig{Failures: 1 << 20}, RetryBudget: retrybudget.Config{Percent: 1, MinPerSecond: 1, Burst: 1}}
		f := newFixture(t, b, cfg, outbox.Config{})
		f.lv.fault = func(n int, _ call) (error, bool) {
			if n < 3 {
				return &laravel.StatusError{Status: http.StatusServiceUnavailable}, false
			}
			return nil, false
		}
		f.deliver(t, ev("s1", 1, event.KindQR, "q"), ev("s2", 1, event.KindQR, "q"), ev("s3", 1, event.KindQR, "q"))
		f.poll(t) // three first attempts, all 503
		f.clk.Advance(200 * time.Millisecond)
		f.poll(t) // one retry (the burst) goes, 503; two are held
		if m := f.metrics(); m.Retried != 1 || m.RetriesHeld != 2 {
			t.Fatalf("metrics %+v; want 1 retry sent and 2 held", m)
		}
		if err := f.d.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"s1", "s2", "s3"} {
			if _, ok := f.lv.Applied(event.KindQR, s); !ok {
				t.Errorf("%s's QR not applied by the final attempt", s)
			}
		}
	})
}
