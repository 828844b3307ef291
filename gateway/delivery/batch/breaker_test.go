package batch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sony/gobreaker/v2"

	"wagate/gateway/event"
	"wagate/gateway/laravel"
	"wagate/gateway/outbox"
)

var errUnavailable = &laravel.StatusError{Status: http.StatusServiceUnavailable}

func fail() (laravel.BatchResult, error) { return laravel.BatchResult{}, errUnavailable }
func ok() (laravel.BatchResult, error)   { return laravel.BatchResult{Success: true}, nil }

func TestTheBreakerOpensHalfOpensAndClosesOnTheFakeClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBreaker(BreakerConfig{Failures: 3, OpenFor: 10 * time.Second}, slog.New(slog.DiscardHandler))
		for i := 0; i < 3; i++ {
			_, _ = b.Execute(fail)
		}
		if b.State() != gobreaker.StateOpen || b.Opened() != 1 {
			t.Fatalf("state %s after 3 consecutive failures; want open", b.State())
		}
		if _, err := b.Execute(ok); !errors.Is(err, gobreaker.ErrOpenState) || classify(err) != outcomeRejected {
			t.Fatalf("send while open: %v; want ErrOpenState, rejected without an attempt", err)
		}
		time.Sleep(10*time.Second - time.Millisecond)
		if b.State() != gobreaker.StateOpen {
			t.Fatal("half-open before OpenFor elapsed")
		}
		time.Sleep(2 * time.Millisecond)
		if b.State() != gobreaker.StateHalfOpen {
			t.Fatalf("state %s after OpenFor; want half-open", b.State())
		}
		// A failed probe opens it again for another OpenFor.
		_, _ = b.Execute(fail)
		if b.State() != gobreaker.StateOpen || b.Opened() != 2 {
			t.Fatalf("state %s after a failed probe; want open again", b.State())
		}
		time.Sleep(10*time.Second + time.Millisecond)
		if _, err := b.Execute(ok); err != nil {
			t.Fatal(err)
		}
		if b.State() != gobreaker.StateClosed {
			t.Fatalf("state %s after a good probe; want closed", b.State())
		}
	})
}

func TestPermanentRefusalsAndCancellationDoNotTripTheBreaker(t *testing.T) {
	b := NewBreaker(BreakerConfig{Failures: 2, OpenFor: time.Hour}, slog.New(slog.DiscardHandler))
	for i := 0; i < 5; i++ {
		_, _ = b.Execute(func() (laravel.BatchResult, error) {
			return laravel.BatchResult{}, &laravel.StatusError{Status: http.StatusUnprocessableEntity}
		})
		_, _ = b.Execute(func() (laravel.BatchResult, error) { return laravel.BatchResult{}, context.Canceled })
	}
	if b.State() != gobreaker.StateClosed {
		t.Fatalf("state %s; a 4xx means Laravel is up, cancellation is ours", b.State())
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		err  error
		want outcome
	}{
		{nil, outcomeDelivered},
		{&laravel.StatusError{Status: 429}, outcomeRetry},
		{&laravel.StatusError{Status: 502}, outcomeRetry},
		{&laravel.StatusError{Status: 503}, outcomeRetry},
		{&laravel.StatusError{Status: 504}, outcomeRetry},
		{fmt.Errorf("laravel: %w", &timeoutErr{}), outcomeRetry},
		{&laravel.StatusError{Status: 409}, outcomeRetry},
		{&laravel.StatusError{Status: 400}, outcomePermanent},
		{&laravel.StatusError{Status: 401}, outcomePermanent},
		{&laravel.StatusError{Status: 422}, outcomePermanent},
		{&laravel.StatusError{Status: 500}, outcomePermanent},
		{fmt.Errorf("x: %w", laravel.ErrMalformedResponse), outcomePermanent},
		{gobreaker.ErrOpenState, outcomeRejected},
		{gobreaker.ErrTooManyRequests, outcomeRejected},
		{context.Canceled, outcomeAborted},
	}
	for _, c := range cases {
		if got := classify(c.err); got != c.want {
			t.Errorf("classify(%v) = %d; want %d", c.err, got, c.want)
		}
	}
}

func TestBackoffGrowsIsCappedAndNeverBeatsRetryAfter(t *testing.T) {
	b := Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2}
	cases := []struct {
		attempt    int
		retryAfter time.Duration
		jitter     float64
		want       time.Duration
	}{
		{1, 0, 0, 50 * time.Millisecond},
		{1, 0, 0.999999, 100 * time.Millisecond},
		{2, 0, 0, 100 * time.Millisecond},
		{3, 0, 0, 200 * time.Millisecond},
		{10, 0, 0, 500 * time.Millisecond},
		{10, 0, 0.999999, time.Second},
		{1, 7 * time.Second, 0.5, 7 * time.Second},
	}
	for _, c := range cases {
		got := b.Delay(c.attempt, c.retryAfter, c.jitter)
		if d := got - c.want; d < -time.Microsecond || d > time.Microsecond {
			t.Errorf("Delay(%d, %s, %v) = %s; want %s", c.attempt, c.retryAfter, c.jitter, got, c.want)
		}
	}
}

func entry(id, sid string, ver int64, kind event.Kind, prio event.Priority) outbox.Entry {
	return outbox.Entry{ID: id, Event: event.Event{ID: "e" + id, SessionID: sid, Kind: kind, Version: ver, Priority: prio, Payload: "x"}}
}

func TestTheCoalescerSplitsIntoBatchesOfAtMostSizeOldestFirst(t *testing.T) {
	t0 := time.Unix(0, 0)
	c := NewCoalescer(2, time.Second, 0)
	for i := 0; i < 5; i++ {
		c.Add(entry(fmt.Sprint(i), fmt.Sprintf("s%d", i), 1, event.KindQR, event.PriorityNormal), t0.Add(time.Duration(i)))
	}
	if trig, due := c.Due(t0); !due || trig != TriggerSize {
		t.Fatalf("Due = %s, %v; want size", trig, due)
	}
	bs := c.TakeAll(TriggerSize)
	if len(bs) != 3 || len(bs[0].Items) != 2 || len(bs[2].Items) != 1 || bs[0].Items[0].Winner.ID != "0" || bs[2].Items[0].Winner.ID != "4" {
		t.Fatalf("batches %+v", bs)
	}
	if bs[0].Key == bs[1].Key {
		t.Fatal("different batches share an Idempotency-Key")
	}
	if c.Waiting(event.KindQR) != 0 || !c.Deadline().IsZero() {
		t.Fatal("items left after TakeAll")
	}
}

func TestAnOlderVersionReadLaterNeverReplacesTheWinner(t *testing.T) {
	c := NewCoalescer(50, time.Second, 0)
	now := time.Unix(0, 0)
	c.Add(entry("2", "s", 5, event.KindStatus, event.PriorityNormal), now)
	c.Add(entry("1", "s", 3, event.KindStatus, event.PriorityNormal), now) // e.g. reclaimed late
	bs := c.TakeAll(TriggerTime)
	if w := bs[0].Items[0].Winner.Event.Version; w != 5 || len(bs[0].Items[0].Superseded) != 1 || c.Coalesced() != 1 {
		t.Fatalf("winner version %d, superseded %d", w, len(bs[0].Items[0].Superseded))
	}
}

func TestItemsPutBackAfterTheDeliveryBudgetMergeWithoutRecounting(t *testing.T) {
	c := NewCoalescer(50, time.Second, 0)
	now := time.Unix(0, 0)
	c.Add(entry("1", "s", 1, event.KindQR, event.PriorityNormal), now)
	c.Add(entry("2", "s", 2, event.KindQR, event.PriorityNormal), now)
	old := c.TakeAll(TriggerTime)
	c.Add(entry("3", "s", 3, event.KindQR, event.PriorityNormal), now)
	c.readd(old[0].Items, now)
	bs := c.TakeAll(TriggerTime)
	if len(bs) != 1 || bs[0].Items[0].Winner.ID != "3" || bs[0].EntryCount() != 3 || c.Coalesced() != 1 {
		t.Fatalf("batches %+v coalesced %d; want winner 3 standing for 3 entries, coalesced counted once", bs, c.Coalesced())
	}
}

func TestTheSameItemsMakeTheSameKeyAndBodyWhateverTheirArrivalOrder(t *testing.T) {
	t0 := time.Unix(0, 0)
	a, b := NewCoalescer(50, time.Second, 0), NewCoalescer(50, time.Second, 0)
	a.Add(entry("1", "s1", 1, event.KindQR, event.PriorityNormal), t0)
	a.Add(entry("2", "s2", 1, event.KindQR, event.PriorityNormal), t0.Add(time.Second))
	b.Add(entry("2", "s2", 1, event.KindQR, event.PriorityNormal), t0) // e.g. recovered after a restart
	b.Add(entry("1", "s1", 1, event.KindQR, event.PriorityNormal), t0.Add(time.Second))
	ba, bb := a.TakeAll(TriggerTime)[0], b.TakeAll(TriggerTime)[0]
	if ba.Key != bb.Key || ba.Items[0].Winner.ID != bb.Items[0].Winner.ID || ba.Items[1].Winner.ID != bb.Items[1].Winner.ID {
		t.Fatalf("keys %s/%s, first items %s/%s: a replay would not match the stored request", ba.Key, bb.Key, ba.Items[0].Winner.ID, bb.Items[0].Winner.ID)
	}
}
