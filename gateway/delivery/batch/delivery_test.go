package batch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"wagate/gateway/event"
	"wagate/gateway/laravel"
	"wagate/gateway/outbox"
	"wagate/internal/redistest"
)

// fakeClock is a hand-driven clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *fakeClock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// call is one request the model received.
type call struct {
	kind  event.Kind
	key   string
	items []laravel.StatusItem // QR items are recorded with QR in EstadoQR
}

// laravelModel behaves like the batch endpoints of the contract: per session and kind it applies
// only newer versions, a replayed Idempotency-Key is a no-op, and a scripted fault can answer a
// call instead (or after applying it, to model a lost response).
type laravelModel struct {
	mu        sync.Mutex
	calls     []call
	state     map[string]laravel.StatusItem // "kind/session" -> applied item
	processed map[string]laravel.BatchResult
	stale     int
	// fault, when set, is asked first for every call n (0-based); applied says whether the call
	// is applied before the fault is returned (a lost response).
	fault func(n int, c call) (err error, applied bool)
	// itemError names sessions whose items Laravel rejects one by one.
	itemError map[string]string
	// unnamedFailure names sessions whose items Laravel, on the calls it says (0-based), neither
	// applies nor names: it counts them as failed without an errors entry (a Laravel bug).
	unnamedFailure map[string]func(n int) bool
	sentCh         chan call
}

func newLaravelModel() *laravelModel {
	return &laravelModel{state: map[string]laravel.StatusItem{}, processed: map[string]laravel.BatchResult{}, sentCh: make(chan call, 1000)}
}

func (l *laravelModel) handle(c call) (laravel.BatchResult, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.calls)
	l.calls = append(l.calls, c)
	var ferr error
	if l.fault != nil {
		var applied bool
		if ferr, applied = l.fault(n, c); ferr != nil && !applied {
			return laravel.BatchResult{}, ferr
		}
	}
	res, replay := l.processed[c.key]
	if !replay {
		res = laravel.BatchResult{Success: true}
		for _, it := range c.items {
			if msg, bad := l.itemError[it.SessionID]; bad {
				res.Failed++
				res.Errors = append(res.Errors, laravel.ItemError{SessionID: it.SessionID, Error: msg})
				continue
			}
			if silent := l.unnamedFailure[it.SessionID]; silent != nil && silent(n) {
				res.Failed++
				continue
			}
			k := string(c.kind) + "/" + it.SessionID
			if cur, ok := l.state[k]; ok && cur.Version >= it.Version {
				res.Stale++
				l.stale++
				continue
			}
			l.state[k] = it
			res.Updated++
		}
		res.Success = res.Failed == 0
		l.processed[c.key] = res
	}
	if ferr != nil {
		return laravel.BatchResult{}, ferr
	}
	select {
	case l.sentCh <- c:
	default:
	}
	return res, nil
}

func (l *laravelModel) PostQRBatch(_ context.Context, key string, b laravel.QRBatch) (laravel.BatchResult, error) {
	c := call{kind: event.KindQR, key: key}
	for _, q := range b.QRs {
		c.items = append(c.items, laravel.StatusItem{SessionID: q.SessionID, EstadoQR: laravel.Status(q.QR), Version: q.Version, EventID: q.EventID})
	}
	return l.handle(c)
}

func (l *laravelModel) PostStatusBatch(_ context.Context, key string, b laravel.StatusBatch) (laravel.BatchResult, error) {
	return l.handle(call{kind: event.KindStatus, key: key, items: append([]laravel.StatusItem(nil), b.Statuses...)})
}

// PostMessageBatch records messages like statuses (message id in EstadoQR, sequence as version):
// the model's per-session version guard then counts a message older than one applied as stale.
func (l *laravelModel) PostMessageBatch(_ context.Context, key string, b laravel.MessageBatch) (laravel.BatchResult, error) {
	c := call{kind: event.KindMessage, key: key}
	for _, m := range b.Messages {
		c.items = append(c.items, laravel.StatusItem{SessionID: m.SessionID, EstadoQR: laravel.Status(m.MessageID), Version: m.Sequence})
	}
	return l.handle(c)
}

// PostReceiptBatch records receipts the way PostMessageBatch records messages.
func (l *laravelModel) PostReceiptBatch(_ context.Context, key string, b laravel.ReceiptBatch) (laravel.BatchResult, error) {
	c := call{kind: event.KindReceipt, key: key}
	for _, r := range b.Receipts {
		c.items = append(c.items, laravel.StatusItem{SessionID: r.SessionID, EstadoQR: laravel.Status(r.MessageID), Version: r.Sequence})
	}
	return l.handle(c)
}

func (l *laravelModel) Calls() []call {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]call(nil), l.calls...)
}

func (l *laravelModel) Applied(kind event.Kind, sid string) (laravel.StatusItem, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	it, ok := l.state[string(kind)+"/"+sid]
	return it, ok
}

type fixture struct {
	d   *Delivery
	ob  *outbox.Outbox
	lv  *laravelModel
	clk *fakeClock
	b   *redistest.Backend
}

func newFixture(t *testing.T, b *redistest.Backend, cfg Config, obCfg outbox.Config) *fixture {
	t.Helper()
	lv := newLaravelModel()
	clk := newFakeClock()
	return newFixtureWith(t, b, cfg, obCfg, lv, clk)
}

func newFixtureWith(t *testing.T, b *redistest.Backend, cfg Config, obCfg outbox.Config, lv *laravelModel, clk *fakeClock) *fixture {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	obCfg.Logger = log
	if obCfg.Consumer == "" {
		obCfg.Consumer = "gw-test"
	}
	ob, err := outbox.New(context.Background(), b.Client(t), obCfg)
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Options{Outbox: ob, Sender: lv, Config: cfg, Clock: clk, Jitter: func() float64 { return 0 }, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{d: d, ob: ob, lv: lv, clk: clk, b: b}
}

var seq int

func ev(sid string, ver int64, kind event.Kind, payload string) event.Event {
	seq++
	return event.Event{
		ID: fmt.Sprintf("ev-%s-%d-%d", sid, ver, seq), SessionID: sid, Kind: kind, Payload: payload,
		Time: time.Unix(1700000000, 0).UTC(), Version: ver, Priority: event.PriorityOf(kind, payload),
	}
}

func (f *fixture) deliver(t *testing.T, evs ...event.Event) {
	t.Helper()
	for _, e := range evs {
		if err := f.d.Deliver(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *fixture) poll(t *testing.T) {
	t.Helper()
	if err := f.d.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) outboxLength(t *testing.T) int64 {
	t.Helper()
	st, err := f.ob.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.Length
}

func (f *fixture) metrics() Metrics { return f.d.Snapshot(context.Background()) }

func TestReachingBatchSizeFlushesAtOnce(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		f := newFixture(t, b, Config{BatchSize: 3}, outbox.Config{})
		f.deliver(t, ev("s1", 1, event.KindQR, "q1"), ev("s2", 1, event.KindQR, "q2"))
		f.poll(t)
		if n := len(f.lv.Calls()); n != 0 {
			t.Fatalf("%d calls with 2 of 3 items waiting; want 0", n)
		}
		f.deliver(t, ev("s3", 1, event.KindQR, "q3"))
		f.poll(t)
		calls := f.lv.Calls()
		if len(calls) != 1 || len(calls[0].items) != 3 || calls[0].kind != event.KindQR {
			t.Fatalf("calls %+v; want one QR batch of 3", calls)
		}
		m := f.metrics()
		if m.Flushes["size"] != 1 || m.Sent != 3 || m.Pending != 0 {
			t.Fatalf("metrics %+v; want 1 size flush, 3 sent, outbox empty", m)
		}
	})
}

func TestTheOldestWaitingItemFlushesAfterBatchInterval(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		f := newFixture(t, b, Config{BatchInterval: 5 * time.Second}, outbox.Config{})
		f.deliver(t, ev("s1", 1, event.KindQR, "q1"))
		f.poll(t)
		f.clk.Advance(3 * time.Second)
		f.deliver(t, ev("s2", 1, event.KindStatus, "pending"))
		f.poll(t)
		f.clk.Advance(2*time.Second - time.Millisecond)
		f.poll(t)
		if n := len(f.lv.Calls()); n != 0 {
			t.Fatalf("%d calls 1 ms before the interval; want 0", n)
		}
		f.clk.Advance(time.Millisecond)
		f.poll(t)
		calls := f.lv.Calls()
		if len(calls) != 2 {
			t.Fatalf("%d calls at the interval; want a status and a QR batch", len(calls))
		}
		if m := f.metrics(); m.Flushes["time"] != 1 || m.Sent != 2 || m.Pending != 0 {
			t.Fatalf("metrics %+v", m)
		}
	})
}

// A HIGH event is flushed within the priority interval with the statuses waiting beside it (one
// request); a young QR code does not ride along (FlushTakes: it would cost a request of its own
// per priority flush) and goes at its own interval.
func TestAHighPriorityEventFlushesWithinThePriorityIntervalTakingTheWaitingStatusesAlong(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		f := newFixture(t, b, Config{PriorityInterval: time.Second}, outbox.Config{})
		f.deliver(t, ev("s1", 1, event.KindQR, "q1"), ev("s2", 1, event.KindStatus, "pending"))
		f.poll(t)
		f.deliver(t, ev("s3", 5, event.KindStatus, "connected"))
		f.poll(t)
		start := f.clk.Now()
		for len(f.lv.Calls()) == 0 {
			if f.clk.Now().Sub(start) > time.Second {
				t.Fatal("HIGH event not sent within the priority interval")
			}
			f.clk.Advance(10 * time.Millisecond)
			f.poll(t)
		}
		calls := f.lv.Calls()
		if len(calls) != 1 || len(calls[0].items) != 2 {
			t.Fatalf("priority flush: %d requests (%+v); want one status batch of the HIGH and the pending status", len(calls), calls)
		}
		if m := f.metrics(); m.Flushes["priority"] != 1 || m.Flushes["time"] != 0 || m.QRWaitingItems != 1 {
			t.Fatalf("flushes %v, QR codes waiting %d; want one priority flush and the QR code waiting", m.Flushes, m.QRWaitingItems)
		}
		for f.clk.Now().Sub(start) < DefaultBatchInterval {
			f.clk.Advance(100 * time.Millisecond)
			f.poll(t)
		}
		if calls := f.lv.Calls(); len(calls) != 2 || len(calls[1].items) != 1 {
			t.Fatalf("%d requests after the batch interval; want the QR code's batch as the second", len(calls))
		}
	})
}

func TestCoalescingSendsTheLatestVersionAndAcksTheSupersededWithIt(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		f := newFixture(t, b, Config{}, outbox.Config{})
		f.deliver(t,
			ev("s1", 1, event.KindQR, "q1"), ev("s1", 3, event.KindQR, "q3"), ev("s1", 2, event.KindQR, "q2"),
			ev("s1", 4, event.KindStatus, "pending"), ev("s2", 1, event.KindQR, "other"))
		f.poll(t)
		f.clk.Advance(DefaultBatchInterval)
		f.poll(t)
		calls := f.lv.Calls()
		if len(calls) != 2 {
			t.Fatalf("%d calls; want one QR and one status batch", len(calls))
		}
		if it, _ := f.lv.Applied(event.KindQR, "s1"); it.Version != 3 || it.EstadoQR != "q3" {
			t.Fatalf("s1 QR applied %+v; want version 3", it)
		}
		m := f.metrics()
		if m.Coalesced != 2 || m.Sent != 3 || m.Pending != 0 {
			t.Fatalf("metrics %+v; want 2 coalesced, 3 sent, nothing left in the outbox", m)
		}
	})
}

func TestRetriesKeepTheIdempotencyKeyAndStaleVersionsNeverWin(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		f := newFixture(t, b, Config{BatchSize: 1}, outbox.Config{})
		f.lv.fault = func(n int, c call) (error, bool) {
			if c.items[0].Version == 1 && n < 3 { // the first batch (v1) fails twice
				return &laravel.StatusError{Status: http.StatusServiceUnavailable}, false
			}
			return nil, false
		}
		f.deliver(t, ev("s1", 1, event.KindStatus, "pending"))
		f.poll(t) // v1: 503
		f.deliver(t, ev("s1", 2, event.KindStatus, "connected"))
		f.poll(t) // v2 sent and applied; v1 waits for its retry
		for i := 0; i < 10 && f.metrics().InFlight > 0; i++ {
			f.clk.Advance(time.Minute)
			f.poll(t)
		}
		calls := f.lv.Calls()
		var v1Keys []string
		for _, c := range calls {
			if c.items[0].Version == 1 {
				v1Keys = append(v1Keys, c.key)
			}
		}
		if len(v1Keys) != 3 || v1Keys[0] != v1Keys[1] || v1Keys[1] != v1Keys[2] {
			t.Fatalf("v1 sent with keys %v; want 3 attempts under one key", v1Keys)
		}
		if it, _ := f.lv.Applied(event.KindStatus, "s1"); it.Version != 2 || it.EstadoQR != "connected" {
			t.Fatalf("final state %+v; want version 2 (connected)", it)
		}
		m := f.metrics()
		if m.Retried != 2 || m.Failed != 2 || m.Pending != 0 || f.lv.stale != 1 {
			t.Fatalf("metrics %+v stale %d; want 2 retries, 2 failures, 1 stale item, outbox empty", m, f.lv.stale)
		}
	})
}

func TestRetryAfterIsHonoured(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		f := newFixture(t, b, Config{BatchSize: 1}, outbox.Config{})
		f.lv.fault = func(n int, c call) (error, bool) {
			if n == 0 {
				return &laravel.StatusError{Status: http.StatusTooManyRequests, RetryAfter: 7 * time.Second}, false
			}
			return nil, false
		}
		f.deliver(t, ev("s1", 1, event.KindQR, "q1"))
		f.poll(t)
		f.clk.Advance(7*time.Second - time.Millisecond)
		f.poll(t)
		if n := len(f.lv.Calls()); n != 1 {
			t.Fatalf("%d calls before Retry-After elapsed; want 1", n)
		}
		f.clk.Advance(time.Millisecond)
		f.poll(t)
		if n := len(f.lv.Calls()); n != 2 {
			t.Fatalf("%d calls once Retry-After elapsed; want 2", n)
		}
		if f.outboxLength(t) != 0 {
			t.Fatal("delivered entry still in the outbox")
		}
	})
}

func TestALostResponseIsReplayedUnderTheSameKeyAfterARestart(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		lv := newLaravelModel()
		clk := newFakeClock()
		first := newFixtureWith(t, b, Config{BatchSize: 2}, outbox.Config{Consumer: "gw-1"}, lv, clk)
		lv.fault = func(n int, c call) (error, bool) {
			if n == 0 { // applied, but the answer never arrives
				return fmt.Errorf("laravel qr_batch: %w", &timeoutErr{}), true
			}
			return nil, false
		}
		first.deliver(t, ev("s1", 1, event.KindQR, "q1"), ev("s2", 1, event.KindQR, "q2"))
		first.poll(t)
		// The gateway dies here (no Close); the same gateway starts again.
		second := newFixtureWith(t, b, Config{BatchSize: 2}, outbox.Config{Consumer: "gw-1"}, lv, clk)
		if n, err := second.d.Recover(context.Background()); err != nil || n != 2 {
			t.Fatalf("recovered %d, %v; want 2", n, err)
		}
		second.poll(t)
		calls := lv.Calls()
		if len(calls) != 2 || calls[0].key != calls[1].key {
			t.Fatalf("calls %+v; want the same batch twice under one key", calls)
		}
		if lv.stale != 0 || len(lv.processed) != 1 {
			t.Fatal("the replay was applied again instead of being a no-op")
		}
		if second.outboxLength(t) != 0 {
			t.Fatal("replayed batch not acknowledged")
		}
	})
}

type timeoutErr struct{}

func (*timeoutErr) Error() string   { return "i/o timeout" }
func (*timeoutErr) Timeout() bool   { return true }
func (*timeoutErr) Temporary() bool { return true }

// Item-level refusals are the only dead letters: an item Laravel names in a 2xx's errors, and an
// item refused alone with a 400/413/422.
func TestItemRefusalsGoToTheDeadLetterStream(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		f := newFixture(t, b, Config{BatchSize: 2}, outbox.Config{})
		f.lv.itemError = map[string]string{"bad": "session disabled"}
		f.lv.fault = func(n int, c call) (error, bool) {
			if c.kind == event.KindStatus {
				return &laravel.StatusError{Status: http.StatusUnprocessableEntity, Message: "estado_qr invalid"}, false
			}
			return nil, false
		}
		f.deliver(t, ev("good", 1, event.KindQR, "q"), ev("bad", 1, event.KindQR, "q"), ev("bad", 2, event.KindQR, "q2"))
		f.poll(t)
		f.deliver(t, ev("s3", 1, event.KindStatus, "pending"))
		f.clk.Advance(DefaultBatchInterval)
		f.poll(t)
		f.clk.Advance(time.Hour)
		f.poll(t)
		if n := len(f.lv.Calls()); n != 2 {
			t.Fatalf("%d calls; want 2 (a 422 is never retried)", n)
		}
		dls, err := f.ob.DeadLetters(context.Background(), 10)
		if err != nil {
			t.Fatal(err)
		}
		reasons := map[string]int{}
		for _, dl := range dls {
			reasons[dl.Event.SessionID]++
			if dl.Event.SessionID == "bad" && !strings.Contains(dl.Reason, "session disabled") {
				t.Fatalf("reason %q", dl.Reason)
			}
			if dl.Event.SessionID == "s3" && !strings.Contains(dl.Reason, "422") {
				t.Fatalf("reason %q", dl.Reason)
			}
		}
		if reasons["bad"] != 1 || reasons["s3"] != 1 || reasons["good"] != 0 {
			t.Fatalf("dead letters by session %v; want bad:1 (its superseded entry was acknowledged when coalesced) s3:1", reasons)
		}
		m := f.metrics()
		if m.DeadLettered != 2 || m.Sent != 1 || m.Pending != 0 {
			t.Fatalf("metrics %+v", m)
		}
	})
}

func TestAnOpenBreakerStopsReadingTheOutbox(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		f := newFixture(t, b, Config{BatchSize: 1, Breaker: BreakerConfig{Failures: 2, OpenFor: time.Hour}}, outbox.Config{})
		f.lv.fault = func(int, call) (error, bool) { return &laravel.StatusError{Status: http.StatusBadGateway}, false }
		f.deliver(t, ev("s1", 1, event.KindQR, "q"))
		f.poll(t)
		f.clk.Advance(time.Minute)
		f.poll(t)
		if !f.d.Breaker().Open() {
			t.Fatalf("breaker %s after 2 consecutive failures; want open", f.d.Breaker().State())
		}
		readBefore := f.ob.Counters().Read
		f.deliver(t, ev("s2", 1, event.KindQR, "q"), ev("s3", 1, event.KindQR, "q"))
		for i := 0; i < 5; i++ {
			f.clk.Advance(time.Minute)
			f.poll(t)
		}
		if got := f.ob.Counters().Read; got != readBefore {
			t.Fatalf("read %d entries while the breaker was open", got-readBefore)
		}
		if n := len(f.lv.Calls()); n != 2 {
			t.Fatalf("%d calls; want none while open", n)
		}
		if m := f.metrics(); m.Breaker != "open" || m.Pending != 3 {
			t.Fatalf("metrics %+v; want breaker open and all 3 entries still in the outbox", m)
		}
	})
}

func TestAFullOutboxFailsDeliverLoudly(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		// The append's deadline also bounds Redis's answers: 20 ms failed as "Redis did not answer"
		// instead of ErrFull on this shared machine (load average 20, with or without -race).
		f := newFixture(t, b, Config{}, outbox.Config{Max: 2, AppendTimeout: 500 * time.Millisecond})
		// Another gateway, patient, fills the shared outbox.
		patient, err := outbox.New(context.Background(), b.Client(t), outbox.Config{Max: 2, Consumer: "gw-patient", Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range []event.Event{ev("s1", 1, event.KindQR, "q"), ev("s2", 1, event.KindQR, "q")} {
			if _, err := patient.Append(context.Background(), e); err != nil {
				t.Fatal(err)
			}
		}
		err = f.d.Deliver(context.Background(), ev("s3", 1, event.KindQR, "q"))
		if !errors.Is(err, outbox.ErrFull) {
			t.Fatalf("Deliver to a full outbox: %v; want ErrFull", err)
		}
		if m := f.metrics(); m.EnqueueFailed != 1 || m.Pending != 2 {
			t.Fatalf("metrics %+v", m)
		}
	})
}

func TestCloseMakesOneAttemptAndLeavesTheUndeliveredForTheNextStart(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		lv := newLaravelModel()
		clk := newFakeClock()
		down := true
		lv.fault = func(int, call) (error, bool) {
			if down {
				return &laravel.StatusError{Status: http.StatusServiceUnavailable}, false
			}
			return nil, false
		}
		f := newFixtureWith(t, b, Config{}, outbox.Config{Consumer: "gw-1"}, lv, clk)
		f.deliver(t, ev("s1", 1, event.KindQR, "q"), ev("s1", 2, event.KindStatus, "connected"))
		f.poll(t)
		if err := f.d.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := len(lv.Calls()); n != 2 {
			t.Fatalf("%d calls by Close; want one final attempt per batch", n)
		}
		if f.outboxLength(t) != 2 {
			t.Fatal("Close deleted undelivered entries")
		}
		lv.mu.Lock()
		down = false
		lv.mu.Unlock()
		next := newFixtureWith(t, b, Config{}, outbox.Config{Consumer: "gw-1"}, lv, clk)
		if n, _ := next.d.Recover(context.Background()); n != 2 {
			t.Fatalf("recovered %d; want 2", n)
		}
		if err := next.d.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if next.outboxLength(t) != 0 {
			t.Fatal("entries not delivered after restart")
		}
		if it, _ := lv.Applied(event.KindStatus, "s1"); it.Version != 2 {
			t.Fatalf("final status %+v", it)
		}
	})
}

func TestAnotherGatewayTakesOverADeadGatewaysBatches(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		lv := newLaravelModel()
		clk := newFakeClock()
		lv.fault = func(n int, c call) (error, bool) {
			if n == 0 {
				return &laravel.StatusError{Status: http.StatusServiceUnavailable}, false
			}
			return nil, false
		}
		dead := newFixtureWith(t, b, Config{BatchSize: 1}, outbox.Config{Consumer: "gw-dead"}, lv, clk)
		dead.deliver(t, ev("s1", 1, event.KindQR, "q"))
		dead.poll(t) // read, sent, failed; then the gateway dies
		alive := newFixtureWith(t, b, Config{BatchSize: 1, ClaimMinIdle: time.Millisecond}, outbox.Config{Consumer: "gw-alive"}, lv, clk)
		// Redis measures idle time on its own clock: poll until the entry has been idle for 1 ms.
		for deadline := time.Now().Add(10 * time.Second); len(lv.Calls()) < 2 && time.Now().Before(deadline); {
			alive.poll(t)
			clk.Advance(DefaultClaimInterval)
		}
		if n := len(lv.Calls()); n != 2 {
			t.Fatalf("%d calls; want the claimed entry re-sent", n)
		}
		if alive.outboxLength(t) != 0 || alive.ob.Counters().Claimed != 1 {
			t.Fatalf("claimed %d, outbox length %d", alive.ob.Counters().Claimed, alive.outboxLength(t))
		}
	})
}

// GET /metrics/batch answers the snapshot as JSON (the Prometheus series are gateway/metrics').
func TestMetricsAnswerAsJSON(t *testing.T) {
	f := newFixture(t, redistest.Mini(t), Config{}, outbox.Config{})
	f.deliver(t, ev("s1", 1, event.KindQR, "q"), ev("s2", 1, event.KindStatus, "pending"))
	f.poll(t)
	rec := httptest.NewRecorder()
	f.d.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics/batch", nil))
	body := rec.Body.String()
	for _, k := range []string{`"qr_waiting_items":1`, `"status_waiting_items":1`, `"time_since_last_flush_ms":`, `"batch_size_items":`, `"qrBatchSize":1`, `"statusBatchSize":1`, `"timeSinceLastFlush":`, `"pending":2`,
		`"in_flight":0`, `"sent":0`, `"failed":0`, `"retried":0`, `"coalesced":0`, `"dead_lettered":0`,
		`"breaker":"closed"`, `"flushes":{`, `"priority":0`, `"size":0`, `"time":0`} {
		if !strings.Contains(body, k) {
			t.Errorf("/metrics/batch lacks %s: %s", k, body)
		}
	}
}

// The running flusher (Start) delivers on its own: a HIGH event reaches Laravel without Poll.
func TestTheStartedFlusherDeliversByItself(t *testing.T) {
	b := redistest.Mini(t)
	lv := newLaravelModel()
	log := slog.New(slog.DiscardHandler)
	ob, err := outbox.New(context.Background(), b.Client(t), outbox.Config{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Options{Outbox: ob, Sender: lv, Logger: log, Config: Config{PollInterval: 5 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := d.Deliver(context.Background(), ev("s1", 1, event.KindStatus, "connected")); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-lv.sentCh:
		if c.items[0].EstadoQR != "connected" {
			t.Fatalf("sent %+v", c)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the flusher did not deliver a HIGH event")
	}
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestALongOutageNeverDuplicatesTheEntriesAGatewayHolds(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		f := newFixture(t, b, Config{BatchSize: 1, ClaimMinIdle: time.Millisecond, Breaker: BreakerConfig{Failures: 1000}}, outbox.Config{})
		f.lv.fault = func(int, call) (error, bool) {
			return &laravel.StatusError{Status: http.StatusServiceUnavailable}, false
		}
		f.deliver(t, ev("s1", 1, event.KindQR, "q"))
		for i := 0; i < 5; i++ {
			f.poll(t)
			f.clk.Advance(DefaultClaimInterval)
			// Let Redis's own clock pass the 1 ms min-idle between steps.
			for start := time.Now(); time.Since(start) < 2*time.Millisecond; {
				time.Sleep(time.Millisecond)
			}
		}
		// With a 1 ms min-idle the claim may return the gateway's own entry; it must not be held twice.
		if m := f.metrics(); m.InFlightItems+m.QRBatchSize != 1 {
			t.Fatalf("metrics %+v; want the one entry held once", m)
		}
	})
}

func TestARefusedBatchIsSplitSoOnlyTheRefusedItemIsDeadLettered(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		f := newFixture(t, b, Config{BatchSize: 4}, outbox.Config{})
		f.lv.fault = func(_ int, c call) (error, bool) {
			for _, it := range c.items {
				if it.SessionID == "poison" {
					return &laravel.StatusError{Status: http.StatusUnprocessableEntity, Message: "qrs.2.qr is invalid"}, false
				}
			}
			return nil, false
		}
		f.deliver(t, ev("a", 1, event.KindQR, "q"), ev("b", 1, event.KindQR, "q"), ev("poison", 1, event.KindQR, "q"), ev("c", 1, event.KindQR, "q"))
		for i := 0; i < 5; i++ {
			f.poll(t)
		}
		for _, sid := range []string{"a", "b", "c"} {
			if _, ok := f.lv.Applied(event.KindQR, sid); !ok {
				t.Errorf("%s not delivered", sid)
			}
		}
		m := f.metrics()
		if m.DeadLettered != 1 || m.Sent != 3 || m.Pending != 0 || m.Splits != 2 {
			t.Fatalf("metrics %+v; want only the poison item dead-lettered after 2 splits", m)
		}
	})
}

// Only a 5xx that persists past the poison horizon while other batches are delivered splits a
// batch, and only the item that keeps failing alone is dead-lettered; its batch-mates are applied.
func TestAPoisonItemIsDeadLetteredOnlyAloneAndPastThePoisonHorizon(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		const horizon = 2 * time.Minute
		f := newFixture(t, b, Config{BatchSize: 4, PoisonHorizon: horizon, Breaker: BreakerConfig{Failures: 1000}}, outbox.Config{})
		f.lv.fault = func(_ int, c call) (error, bool) {
			for _, it := range c.items {
				if it.SessionID == "poison" {
					return &laravel.StatusError{Status: http.StatusInternalServerError, Message: "Undefined array key"}, false
				}
			}
			return nil, false
		}
		start := f.clk.Now()
		f.deliver(t, ev("a", 1, event.KindQR, "q"), ev("b", 1, event.KindQR, "q"), ev("poison", 1, event.KindQR, "q"), ev("c", 1, event.KindQR, "q"))
		for i := 0; f.clk.Now().Sub(start) < 2*horizon; i++ {
			f.deliver(t, ev(fmt.Sprintf("other%d", i), 1, event.KindStatus, "pending")) // other batches keep being delivered
			f.poll(t)
			if dls := f.deadLetters(t); len(dls) > 0 && f.clk.Now().Sub(start) < horizon {
				t.Fatalf("dead-lettered after %s, before the %s horizon: %s", f.clk.Now().Sub(start), horizon, dls[0].Reason)
			}
			if m := f.metrics(); m.Splits > 0 && f.clk.Now().Sub(start) < horizon {
				t.Fatalf("split after %s, before the %s horizon", f.clk.Now().Sub(start), horizon)
			}
			f.clk.Advance(5 * time.Second)
		}
		f.clk.Advance(DefaultBatchInterval)
		f.poll(t)
		for _, sid := range []string{"a", "b", "c"} {
			if _, ok := f.lv.Applied(event.KindQR, sid); !ok {
				t.Errorf("%s, a batch-mate of the poison item, never applied", sid)
			}
		}
		dls := f.deadLetters(t)
		if len(dls) != 1 || dls[0].Event.SessionID != "poison" || !strings.Contains(dls[0].Reason, "500") || !strings.Contains(dls[0].Reason, "Undefined array key") {
			t.Fatalf("dead letters %+v; want the poison item alone, with the status and Laravel's message", dls)
		}
		if m := f.metrics(); m.FailuresByStatus["500"] == 0 || m.Pending != 0 {
			t.Fatalf("metrics %+v; want the 500s counted by status and the outbox empty", m)
		}
	})
}

// A Laravel-wide run of 500s longer than the poison horizon (no batch delivered meanwhile) is an
// outage, not a poison item: nothing is split or dead-lettered, and everything is applied after.
func TestAnOutageOf500sLongerThanThePoisonHorizonNeverDeadLetters(t *testing.T) {
	f := newFixture(t, redistest.Mini(t), Config{BatchSize: 2, PoisonHorizon: time.Minute, Breaker: BreakerConfig{Failures: 1000}}, outbox.Config{})
	start := f.clk.Now()
	f.lv.fault = func(int, call) (error, bool) {
		if f.clk.Now().Sub(start) < 10*time.Minute {
			return &laravel.StatusError{Status: http.StatusInternalServerError}, false
		}
		return nil, false
	}
	f.deliver(t, ev("s1", 1, event.KindStatus, "connected"), ev("s2", 1, event.KindStatus, "connected"), ev("s3", 1, event.KindStatus, "connected"))
	for f.clk.Now().Sub(start) < 12*time.Minute {
		f.poll(t)
		f.clk.Advance(10 * time.Second)
	}
	if m := f.metrics(); m.DeadLettered != 0 || m.Splits != 0 || m.Pending != 0 {
		t.Fatalf("metrics %+v; want no dead letter, no split, everything delivered after the outage", m)
	}
}

// Every delivery failure is exported with its status, so a rotated token (401) or a misconfigured
// URL (3xx) shows on a dashboard instead of in dead letters.
func TestDeliveryFailuresAreCountedByStatus(t *testing.T) {
	f := newFixture(t, redistest.Mini(t), Config{BatchSize: 1, Breaker: BreakerConfig{Failures: 1000}}, outbox.Config{})
	answers := []error{
		&laravel.StatusError{Status: http.StatusUnauthorized},
		&laravel.StatusError{Status: http.StatusPermanentRedirect, Location: "https://elsewhere.example/"},
		fmt.Errorf("laravel status_batch: %w", &timeoutErr{}),
		&laravel.StatusError{Status: http.StatusUnauthorized},
	}
	f.lv.fault = func(n int, _ call) (error, bool) {
		if n < len(answers) {
			return answers[n], false
		}
		return nil, false
	}
	f.deliver(t, ev("s1", 1, event.KindStatus, "connected"))
	for i := 0; i < 10 && f.outboxLength(t) > 0; i++ {
		f.poll(t)
		f.clk.Advance(time.Minute)
	}
	// gateway/metrics exposes FailuresByStatus as wagate_batch_send_failures_total{status}.
	got := f.metrics().FailuresByStatus
	want := map[string]int64{"401": 2, "308": 1, "network": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("failures by status %v; want %v", got, want)
	}
	if m := f.metrics(); m.DeadLettered != 0 || m.Sent != 1 || m.Failed != 4 {
		t.Fatalf("metrics %+v; want the event delivered after 4 failures, nothing dead-lettered", m)
	}
}

// At shutdown even an item Laravel refused by name stays pending (the final attempt never
// dead-letters); the next start's send decides, and dead-letters it then, with the reason.
func TestTheFinalAttemptLeavesItemsRefusedByNamePendingForTheNextStart(t *testing.T) {
	b := redistest.Mini(t)
	lv, clk := newLaravelModel(), newFakeClock()
	lv.itemError = map[string]string{"bad": "session disabled"}
	f := newFixtureWith(t, b, Config{}, outbox.Config{Consumer: "gw-1"}, lv, clk)
	f.deliver(t, ev("good", 1, event.KindStatus, "connected"), ev("bad", 1, event.KindStatus, "connected"))
	if err := f.d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := lv.Applied(event.KindStatus, "good"); !ok || f.outboxLength(t) != 1 || len(f.deadLetters(t)) != 0 {
		t.Fatalf("after Close: outbox length %d, dead letters %d; want good applied and acknowledged, bad pending", f.outboxLength(t), len(f.deadLetters(t)))
	}
	next := newFixtureWith(t, b, Config{}, outbox.Config{Consumer: "gw-1"}, lv, clk)
	if n, err := next.d.Recover(context.Background()); err != nil || n != 1 {
		t.Fatalf("recovered %d, %v; want the refused item", n, err)
	}
	clk.Advance(DefaultBatchInterval)
	next.poll(t)
	dls := next.deadLetters(t)
	if len(dls) != 1 || dls[0].Event.SessionID != "bad" || !strings.Contains(dls[0].Reason, "session disabled") || next.outboxLength(t) != 0 {
		t.Fatalf("dead letters %+v, outbox length %d; want bad dead-lettered with Laravel's reason", dls, next.outboxLength(t))
	}
}
