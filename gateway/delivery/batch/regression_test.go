package batch

// Regression tests of issue 19 ("Nothing lost under any production fault"), one per defect of
// the delivery policy, each named after what must hold. They use only the flusher's long-standing
// API so they can be run against the code before the fix (where each fails).

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"wagate/gateway/event"
	"wagate/gateway/laravel"
	"wagate/gateway/outbox"
	"wagate/internal/redistest"
)

func (f *fixture) deadLetters(t *testing.T) []outbox.DeadLetter {
	t.Helper()
	dls, err := f.ob.DeadLetters(context.Background(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	return dls
}

// Defect 1: shutdown's final attempt dead-lettered a whole batch on one 500, or on a 422 caused by
// one item (the split was skipped when final). Now it leaves everything it cannot deliver pending;
// the next start delivers the good items and isolates the refused one.
func TestFinalAttemptNeverDeadLettersOrSplits(t *testing.T) {
	cases := []struct {
		name string
		// answer is Laravel's answer to a batch during the shutdown, nil to apply it.
		answer func(c call) error
		// refusedAfterRestart is the session the next start may dead-letter (refused alone).
		refusedAfterRestart string
	}{
		{"a 500 for every batch", func(call) error { return &laravel.StatusError{Status: http.StatusInternalServerError} }, ""},
		{"a 422 caused by one item", func(c call) error {
			for _, it := range c.items {
				if it.SessionID == "poison" {
					return &laravel.StatusError{Status: http.StatusUnprocessableEntity, Message: "qrs.1.qr is invalid"}
				}
			}
			return nil
		}, "poison"},
		{"a 400 caused by one item", func(c call) error {
			for _, it := range c.items {
				if it.SessionID == "poison" {
					return &laravel.StatusError{Status: http.StatusBadRequest}
				}
			}
			return nil
		}, "poison"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
				lv, clk := newLaravelModel(), newFakeClock()
				lv.fault = func(_ int, c call) (error, bool) { return tc.answer(c), false }
				f := newFixtureWith(t, b, Config{}, outbox.Config{Consumer: "gw-1"}, lv, clk)
				f.deliver(t, ev("a", 1, event.KindQR, "q"), ev("poison", 1, event.KindQR, "q"), ev("b", 1, event.KindQR, "q"), ev("c", 1, event.KindQR, "q"))
				if err := f.d.Close(context.Background()); err != nil {
					t.Fatal(err)
				}
				if dls := f.deadLetters(t); len(dls) != 0 {
					t.Fatalf("the final attempt dead-lettered %d events: %+v", len(dls), dls)
				}
				if m := f.metrics(); m.Splits != 0 {
					t.Fatalf("the final attempt split %d times", m.Splits)
				}
				if n := f.outboxLength(t); n != 4 {
					t.Fatalf("outbox holds %d entries after the final attempt; want all 4 pending", n)
				}

				// The next start, with Laravel's 500s over, delivers what the shutdown left pending.
				if tc.refusedAfterRestart == "" {
					lv.mu.Lock()
					lv.fault = nil
					lv.mu.Unlock()
				}
				next := newFixtureWith(t, b, Config{}, outbox.Config{Consumer: "gw-1"}, lv, clk)
				if _, err := next.d.Recover(context.Background()); err != nil {
					t.Fatal(err)
				}
				for i := 0; i < 10 && next.outboxLength(t) > 0; i++ {
					clk.Advance(DefaultBatchInterval)
					next.poll(t)
				}
				for _, sid := range []string{"a", "b", "c"} {
					if _, ok := lv.Applied(event.KindQR, sid); !ok {
						t.Errorf("%s never applied after the restart", sid)
					}
				}
				dls := next.deadLetters(t)
				for _, dl := range dls {
					if dl.Event.SessionID != tc.refusedAfterRestart {
						t.Errorf("dead letter for %s: %s", dl.Event.SessionID, dl.Reason)
					}
				}
				if tc.refusedAfterRestart == "" && len(dls) != 0 {
					t.Errorf("%d dead letters after a plain 500", len(dls))
				}
				if tc.refusedAfterRestart != "" && len(dls) != 1 {
					t.Errorf("%d dead letters; want the refused item alone", len(dls))
				}
			})
		})
	}
}

// Defect 2: a 401/403/404/405 (a rotated token, a clock past the signature window, a route
// missing during a deploy), a 3xx (a misconfigured URL) and the other answers that say nothing
// about an item dead-lettered every event at full speed, and the breaker counted them as
// successes. Now they are retried under the same key, open the breaker, and are delivered once
// Laravel is fixed.
func TestAnswersThatAreNotItemRefusalsAreRetriedAndOpenTheBreakerNeverDeadLetter(t *testing.T) {
	for _, status := range []int{301, 302, 307, 308, 401, 403, 404, 405, 408, 410, 421, 418} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			f := newFixture(t, redistest.Mini(t), Config{BatchSize: 1, Breaker: BreakerConfig{Failures: 3, OpenFor: time.Millisecond}}, outbox.Config{})
			broken := true
			keys := map[string]bool{}
			f.lv.fault = func(_ int, c call) (error, bool) {
				if broken {
					keys[c.key] = true
					return &laravel.StatusError{Status: status}, false
				}
				return nil, false
			}
			f.deliver(t, ev("s1", 1, event.KindStatus, "connected"))
			for i := 0; i < 8; i++ {
				f.poll(t)
				f.clk.Advance(time.Minute)
				time.Sleep(2 * time.Millisecond) // the breaker half-opens on the wall clock
			}
			if dls := f.deadLetters(t); len(dls) != 0 {
				t.Fatalf("HTTP %d dead-lettered: %s", status, dls[0].Reason)
			}
			if f.d.Breaker().Opened() == 0 {
				t.Fatalf("HTTP %d never opened the breaker: it was counted as a success", status)
			}
			if len(keys) != 1 {
				t.Fatalf("retries used %d keys; want the same Idempotency-Key", len(keys))
			}
			f.lv.mu.Lock()
			broken = false
			f.lv.mu.Unlock()
			for i := 0; i < 10 && f.outboxLength(t) > 0; i++ {
				f.clk.Advance(time.Minute)
				time.Sleep(2 * time.Millisecond)
				f.poll(t)
			}
			if it, ok := f.lv.Applied(event.KindStatus, "s1"); !ok || it.EstadoQR != "connected" {
				t.Fatalf("not delivered once Laravel was fixed (outbox length %d)", f.outboxLength(t))
			}
		})
	}
}

// Defect 3: a 500 lasting under a second dead-lettered final states (3 attempts within ~375 ms).
func TestABriefRunOf500sNeverDeadLetters(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		f := newFixture(t, b, Config{BatchSize: 1, Breaker: BreakerConfig{Failures: 1000}}, outbox.Config{})
		start := f.clk.Now()
		f.lv.fault = func(int, call) (error, bool) {
			if f.clk.Now().Sub(start) < time.Second {
				return &laravel.StatusError{Status: http.StatusInternalServerError}, false
			}
			return nil, false
		}
		f.deliver(t, ev("s1", 7, event.KindStatus, "logged_out"))
		for i := 0; i < 40 && f.outboxLength(t) > 0; i++ {
			f.poll(t)
			f.clk.Advance(50 * time.Millisecond)
		}
		if dls := f.deadLetters(t); len(dls) != 0 {
			t.Fatalf("a 500 lasting 1 s dead-lettered the final state: %s", dls[0].Reason)
		}
		if it, ok := f.lv.Applied(event.KindStatus, "s1"); !ok || it.Version != 7 {
			t.Fatalf("final state not applied after the 500s ended: %+v", it)
		}
	})
}

// Defect 6: a Retry-After of up to 24 h parked one batch far past the delivery budget while the
// others flowed. Now a Retry-After pauses every send to Laravel, for at most MaxRetryAfter
// (default 5 min), and then everything flows.
func TestALongRetryAfterPausesEverySendAndIsCapped(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		f := newFixture(t, b, Config{BatchSize: 1}, outbox.Config{})
		start := f.clk.Now()
		f.lv.fault = func(n int, c call) (error, bool) {
			if n == 0 {
				return &laravel.StatusError{Status: http.StatusTooManyRequests, RetryAfter: 24 * time.Hour}, false
			}
			return nil, false
		}
		f.deliver(t, ev("s1", 1, event.KindStatus, "connected"))
		f.poll(t) // 429, Retry-After 24 h
		f.deliver(t, ev("s2", 1, event.KindStatus, "connected"))
		for f.clk.Now().Sub(start) < DefaultMaxRetryAfter-10*time.Second {
			f.clk.Advance(10 * time.Second)
			f.poll(t)
		}
		if calls := f.lv.Calls(); len(calls) != 1 {
			t.Fatalf("%d calls during the pause Laravel asked for; want none after the 429: %+v", len(calls), calls)
		}
		for i := 0; i < 10 && f.outboxLength(t) > 0; i++ {
			f.clk.Advance(10 * time.Second)
			f.poll(t)
		}
		if took := f.clk.Now().Sub(start); took > DefaultMaxRetryAfter+2*time.Minute {
			t.Fatalf("delivered only after %s", took)
		}
		for _, sid := range []string{"s1", "s2"} {
			if _, ok := f.lv.Applied(event.KindStatus, sid); !ok {
				t.Fatalf("%s not delivered once the capped pause ended (outbox length %d)", sid, f.outboxLength(t))
			}
		}
	})
}

// Defect 7 (first half): a 2xx whose failed count exceeded its named errors was acknowledged:
// those items were neither applied nor dead-lettered. Now the items such an answer does not
// account for are sent again (under a new key: a replay would return the same answer).
func TestA2xxThatDoesNotNameEveryFailureIsRetriedNotAcknowledged(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		f := newFixture(t, b, Config{BatchSize: 3}, outbox.Config{})
		f.lv.unnamedFailure = map[string]func(int) bool{"ghost": func(n int) bool { return n == 0 }}
		f.deliver(t, ev("a", 1, event.KindStatus, "connected"), ev("ghost", 4, event.KindStatus, "logged_out"), ev("b", 1, event.KindStatus, "connected"))
		for i := 0; i < 10 && f.outboxLength(t) > 0; i++ {
			f.poll(t)
			f.clk.Advance(time.Second)
		}
		if it, ok := f.lv.Applied(event.KindStatus, "ghost"); !ok || it.Version != 4 {
			t.Fatalf("the item Laravel counted as failed without naming it was acknowledged and never applied (outbox length %d)", f.outboxLength(t))
		}
		if dls := f.deadLetters(t); len(dls) != 0 {
			t.Fatalf("dead letters: %+v", dls)
		}
	})
}

// Defect 7 (second half): a 2xx with an undecodable body was dead-lettered although Laravel had
// applied it. Now it is retried under the same key, whose replay is a no-op.
func TestAnUndecodable2xxIsRetriedUnderTheSameKeyNotDeadLettered(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		f := newFixture(t, b, Config{BatchSize: 2}, outbox.Config{})
		f.lv.fault = func(n int, c call) (error, bool) {
			if n == 0 { // applied; the answer is garbled on the way back
				return fmt.Errorf("laravel status_batch: %w: invalid character '<'", laravel.ErrMalformedResponse), true
			}
			return nil, false
		}
		f.deliver(t, ev("s1", 2, event.KindStatus, "connected"), ev("s2", 3, event.KindStatus, "disconnected"))
		for i := 0; i < 10 && f.outboxLength(t) > 0; i++ {
			f.poll(t)
			f.clk.Advance(time.Second)
		}
		if dls := f.deadLetters(t); len(dls) != 0 {
			t.Fatalf("an undecodable 2xx was dead-lettered: %s", dls[0].Reason)
		}
		calls := f.lv.Calls()
		if len(calls) != 2 || calls[0].key != calls[1].key {
			t.Fatalf("calls %+v; want the batch replayed once under its key", calls)
		}
		if f.outboxLength(t) != 0 || f.lv.stale != 0 {
			t.Fatalf("outbox length %d, stale %d: want acknowledged after the replay, applied once", f.outboxLength(t), f.lv.stale)
		}
	})
}

// Defect 11 (delivery half): MaxBuffered counted coalesced items, not outbox entries (300 entries
// held against a limit of 10). Now superseded entries are acknowledged when coalesced (their
// winner is durable in the outbox) and the flusher never holds more than MaxBuffered entries.
func TestMaxBufferedCountsOutboxEntriesNotCoalescedItems(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		f := newFixture(t, b, Config{MaxBuffered: 10}, outbox.Config{})
		for v := int64(1); v <= 300; v++ {
			f.deliver(t, ev("flappy", v, event.KindQR, fmt.Sprintf("q%d", v)))
		}
		f.poll(t)
		st, err := f.ob.Stats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if st.Pending > 10 {
			t.Fatalf("the flusher holds %d read, unacknowledged entries; MaxBuffered is 10", st.Pending)
		}
		for i := 0; i < 100 && f.outboxLength(t) > 0; i++ {
			f.clk.Advance(DefaultBatchInterval)
			f.poll(t)
		}
		if it, ok := f.lv.Applied(event.KindQR, "flappy"); !ok || it.Version != 300 {
			t.Fatalf("applied %+v; want the latest version (300)", it)
		}
		if n := f.outboxLength(t); n != 0 {
			t.Fatalf("%d entries left in the outbox", n)
		}
	})
}
