package batch

// Regression tests of chaos seed 1's schedules 39, 65 and 85 (issue 19): entries taken over by a
// flusher are never sent to Laravel a second time under a new key, and entries Redis moved to a
// flusher for a read whose answer never arrived are sent.

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"wagate/gateway/event"
	"wagate/gateway/outbox"
	"wagate/internal/redistest"
)

// newFixtureOn is newFixtureWith on a Redis client of the test's own.
func newFixtureOn(t *testing.T, rdb redis.UniversalClient, cfg Config, consumer string, lv *laravelModel, clk *fakeClock) *fixture {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	ob, err := outbox.New(context.Background(), rdb, outbox.Config{Consumer: consumer, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Options{Outbox: ob, Sender: lv, Config: cfg, Clock: clk, Jitter: func() float64 { return 0 }, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{d: d, ob: ob, lv: lv, clk: clk}
}

// message is the event of a customer's message number seq to session sid.
func message(sid string, seq int64) event.Event {
	return messagingEntry(event.KindMessage, sid, "chat-"+sid, seq).Event
}

// keysPerItem maps each item Laravel received (kind/session/message or version) to the
// Idempotency-Keys it arrived under: Laravel applies a batch once per key.
func keysPerItem(calls []call) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, c := range calls {
		for _, it := range c.items {
			id := string(c.kind) + "/" + it.SessionID + "/" + string(it.EstadoQR)
			if out[id] == nil {
				out[id] = map[string]bool{}
			}
			out[id][c.key] = true
		}
	}
	return out
}

// Chaos seed 1 schedules 65 and 85: a batch Laravel applied (its answer lost, or the gateway
// killed before the acknowledgement) was taken over by the next process, batched again with
// entries appended meanwhile, under a new key: Laravel applied those messages a second time.
// Now the batch is re-formed from its record and sent again first, under its key.
func TestABatchTakenOverAfterAKillIsSentAgainUnderItsOwnKeyNotMixedWithNewEntries(t *testing.T) {
	for _, lost := range []string{"the answer was lost", "the gateway died before the acknowledgement"} {
		t.Run(lost, func(t *testing.T) {
			redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
				lv, clk := newLaravelModel(), newFakeClock()
				if lost == "the answer was lost" {
					lv.fault = func(n int, _ call) (error, bool) {
						if n == 0 {
							return &timeoutErr{}, true // applied; the answer never arrives
						}
						return nil, false
					}
				}
				cfg := Config{BatchSize: 50, MessageInterval: time.Second}
				first := newFixtureWith(t, b, cfg, outbox.Config{Consumer: "gw-1"}, lv, clk)
				first.deliver(t, message("s1", 1), message("s1", 2), message("s2", 1))
				first.poll(t) // read; they wait for the message interval
				clk.Advance(2 * time.Second)
				if lost == "the answer was lost" {
					first.poll(t)
				} else {
					// The flusher sends, Laravel applies, and the process dies before it acknowledges:
					// the same as an answer that never came, seen from Redis.
					first.d.pollMu.Lock()
					first.d.mu.Lock()
					first.d.markInFlight()
					batches := first.d.co.TakeAll(TriggerTime)
					first.d.mu.Unlock()
					sendable, err := first.d.record(context.Background(), batches)
					if err != nil || len(sendable) != 1 {
						t.Fatalf("record: %d sendable, %v", len(sendable), err)
					}
					if _, err := first.d.post(context.Background(), sendable[0]); err != nil {
						t.Fatal(err)
					}
					first.d.pollMu.Unlock()
				}
				if got := len(lv.Calls()); got != 1 {
					t.Fatalf("%d calls before the kill; want 1", got)
				}
				// More messages are appended; the process is SIGKILLed (no Close) and starts again.
				first.deliver(t, message("s1", 3), message("s3", 1))
				second := newFixtureWith(t, b, cfg, outbox.Config{Consumer: "gw-1"}, lv, clk)
				if _, err := second.d.Recover(context.Background()); err != nil {
					t.Fatal(err)
				}
				for range 4 {
					second.poll(t)
					clk.Advance(2 * time.Second)
				}
				calls := lv.Calls()
				if len(calls) < 2 || calls[1].key != calls[0].key || len(calls[1].items) != 3 {
					t.Fatalf("calls %+v; want the batch taken over sent first again, as it was, under its key", calls)
				}
				for item, keys := range keysPerItem(calls) {
					if len(keys) != 1 {
						t.Errorf("%s reached Laravel under %d keys: applied %d times", item, len(keys), len(keys))
					}
				}
				if len(keysPerItem(calls)) != 5 {
					t.Errorf("Laravel received %d messages; want all 5", len(keysPerItem(calls)))
				}
				if n := second.outboxLength(t); n != 0 {
					t.Errorf("%d entries left in the outbox", n)
				}
				recs, err := second.ob.RecordedBatches(context.Background())
				if err != nil || len(recs) != 0 {
					t.Errorf("batch records left: %+v, %v", recs, err)
				}
			})
		})
	}
}

// loseReadAnswers is a go-redis hook playing a Redis that runs the flusher's reads of new entries
// while their answers get lost: armed, the next XREADGROUP ... > runs in Redis (its entries move to
// the consumer) and the caller gets either a timeout, or, as go-redis does when it retries a timed
// out read, the answer of a second read after a delay.
type loseReadAnswers struct {
	armed atomic.Bool
	// retry answers the caller with a second read (go-redis's retry) instead of a timeout.
	retry bool
	// delay is how long the lost answer kept the caller waiting.
	delay time.Duration
}

func (h *loseReadAnswers) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *loseReadAnswers) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h *loseReadAnswers) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		args := cmd.Args()
		newOnly := cmd.Name() == "xreadgroup" && len(args) > 0 && args[len(args)-1] == ">"
		if !newOnly || !h.armed.CompareAndSwap(true, false) {
			return next(ctx, cmd)
		}
		if err := next(ctx, cmd); err != nil { // Redis runs it; the answer is lost
			return err
		}
		time.Sleep(h.delay)
		if !h.retry {
			return &timeoutErr{}
		}
		return next(ctx, cmd)
	}
}

// Chaos seed 1 schedule 39: Redis was SIGSTOPped while the flusher read new entries; go-redis
// timed the read out and retried it, Redis ran both when it resumed, and the first read's
// entries (a customer's message the gateway had acknowledged to WhatsApp) were pending for the
// gateway's consumer and sent by nobody: nothing claims an entry before it is idle for 2 min 20 s,
// and the run ended first. Now the flusher notices that Redis counts more entries pending for it
// than it holds, and takes them back.
func TestEntriesMovedToTheFlusherByAReadWhoseAnswerWasLostAreSent(t *testing.T) {
	cases := []struct {
		name string
		// retry and delay are the loseReadAnswers hook's.
		retry bool
		delay time.Duration
		// wait is how long after the lost answer the flusher must have taken the entries back.
		wait time.Duration
	}{
		{"the read timed out", false, 0, 0},
		{"go-redis retried the read and the retry answered, slowly", true, slowRedisCall + 100*time.Millisecond, 0},
		{"go-redis retried the read and the retry answered at once", true, 0, DefaultClaimInterval},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
				rdb := b.Client(t)
				hook := &loseReadAnswers{retry: tc.retry, delay: tc.delay}
				rdb.AddHook(hook)
				lv, clk := newLaravelModel(), newFakeClock()
				f := newFixtureOn(t, rdb, Config{BatchSize: 50, MessageInterval: time.Second}, "gw-1", lv, clk)
				f.poll(t) // the first claim scan is behind it
				f.deliver(t, message("s1", 1), message("s2", 1))
				hook.armed.Store(true)
				_ = f.d.Poll(context.Background()) // the read whose answer is lost
				if hook.armed.Load() {
					t.Fatal("the flusher did not read")
				}
				f.deliver(t, message("s3", 1))
				for elapsed := time.Duration(0); elapsed <= tc.wait+4*time.Second; elapsed += time.Second {
					_ = f.d.Poll(context.Background())
					clk.Advance(time.Second)
				}
				got := keysPerItem(lv.Calls())
				for _, want := range []string{"message/s1/WAID-s1-1", "message/s2/WAID-s2-1", "message/s3/WAID-s3-1"} {
					if len(got[want]) != 1 {
						t.Errorf("%s reached Laravel under %d keys; want 1", want, len(got[want]))
					}
				}
				if n := f.outboxLength(t); n != 0 {
					t.Errorf("%d entries left in the outbox", n)
				}
			})
		})
	}
}
