package batch

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"wagate/gateway/event"
	"wagate/gateway/laravel"
	"wagate/gateway/outbox"
	"wagate/internal/redistest"
)

// settledLog records what Options.Settled is told, one line per call.
type settledLog struct {
	mu    sync.Mutex
	calls [][]string
}

func (s *settledLog) hook(_ context.Context, evs []event.Event, fate Settlement) {
	ids := make([]string, len(evs))
	for i, ev := range evs {
		ids[i] = ev.ID
		if fate == SettledDeadLettered {
			ids[i] = "dead:" + ev.ID
		}
	}
	slices.Sort(ids)
	s.mu.Lock()
	s.calls = append(s.calls, ids)
	s.mu.Unlock()
}

func (s *settledLog) take() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.calls
	s.calls = nil
	return out
}

// The Settled hook hears of an item only when its fate is final, and of which: applied by
// Laravel, refused by name and dead-lettered, or dead-lettered alone by the policy; never while
// it is retried.
func TestTheSettledHookHearsOfAppliedAndDeadLetteredItemsOnlyOncePerBatch(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		f := newFixture(t, b, Config{BatchSize: 50}, outbox.Config{})
		var log settledLog
		f.d.onSettled = log.hook
		f.lv.itemError = map[string]string{"bad": "unknown session"}
		f.lv.fault = func(n int, c call) (error, bool) {
			switch {
			case n == 0: // the first batch of messages: Laravel is unavailable once
				return &laravel.StatusError{Status: http.StatusServiceUnavailable, Message: "down"}, false
			case c.kind == event.KindStatus: // a status Laravel refuses whole: dead-lettered alone
				return &laravel.StatusError{Status: http.StatusUnprocessableEntity, Message: "estado_qr invalid"}, false
			}
			return nil, false
		}
		good := messagingEntry(event.KindMessage, "good", "chat-a", 1).Event
		bad := messagingEntry(event.KindMessage, "bad", "chat-b", 1).Event
		read := messagingEntry(event.KindReceipt, "good", "chat-a", 2).Event
		f.deliver(t, good, bad)
		f.poll(t) // read
		f.clk.Advance(DefaultMessageInterval)
		f.poll(t) // flushed and sent
		if calls := log.take(); len(f.lv.Calls()) != 1 || len(calls) != 0 {
			t.Fatalf("after a 503 (%d calls): settled %v; want nothing, the batch is retried", len(f.lv.Calls()), calls)
		}
		f.clk.Advance(time.Minute)
		f.poll(t)
		if calls, want := log.take(), [][]string{{good.ID}, {"dead:" + bad.ID}}; !slices.EqualFunc(calls, want, slices.Equal) {
			t.Fatalf("after the retry was answered: settled %v; want %v, one call per fate (one applied, one refused by name)", calls, want)
		}

		f.deliver(t, read, ev("s3", 1, event.KindStatus, "pending"))
		f.poll(t)
		f.clk.Advance(DefaultBatchInterval)
		f.poll(t)
		f.clk.Advance(time.Hour)
		f.poll(t)
		calls := log.take()
		if len(calls) != 2 || len(calls[0]) != 1 || len(calls[1]) != 1 ||
			!slices.Contains([]string{calls[0][0], calls[1][0]}, read.ID) ||
			!strings.HasPrefix(calls[0][0], "dead:") && !strings.HasPrefix(calls[1][0], "dead:") {
			t.Fatalf("settled %v; want the applied receipt and the dead-lettered status, one call each", calls)
		}
		if m := f.metrics(); m.DeadLettered != 2 || m.Sent != 2 {
			t.Fatalf("metrics %+v; want 2 dead-lettered, 2 sent", m)
		}
	})
}

// Items in flight are what HeldEventIDs names; settled ones are not.
func TestHeldEventIDsNamesTheItemsTheFlusherStillHolds(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		f := newFixture(t, b, Config{BatchSize: 50}, outbox.Config{})
		f.lv.fault = func(n int, c call) (error, bool) {
			if n == 0 {
				return &laravel.StatusError{Status: http.StatusServiceUnavailable, Message: "down"}, false
			}
			return nil, false
		}
		m1 := messagingEntry(event.KindMessage, "s1", "chat-a", 1).Event
		f.deliver(t, m1)
		f.poll(t)
		f.clk.Advance(DefaultMessageInterval)
		f.poll(t)
		if held := f.d.HeldEventIDs(); !held[m1.ID] || len(held) != 1 {
			t.Fatalf("held %v while its batch is retried; want %s", held, m1.ID)
		}
		f.clk.Advance(time.Minute)
		f.poll(t)
		if held := f.d.HeldEventIDs(); len(held) != 0 {
			t.Fatalf("held %v after Laravel applied it; want nothing", held)
		}
	})
}
