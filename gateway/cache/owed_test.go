package cache

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"wagate/gateway/event"
	"wagate/gateway/laravel"
	"wagate/internal/redistest"
)

func TestOwedWritesKeepTheLatestEventPerSessionAndKindUntilWritten(t *testing.T) {
	type step struct {
		op  string // "add" or "paid"
		ev  event.Event
		ok  bool // add's answer
		got map[event.Kind]int64
	}
	s1 := func(kind event.Kind, v int64) event.Event {
		if kind == event.KindQR {
			return qrEvent("s1", v, "2@c")
		}
		return statusEvent("s1", v, laravel.StatusPending)
	}
	cases := []struct {
		name  string
		max   int
		steps []step
	}{
		{"a newer event replaces the owed one, an older one does not", 10, []step{
			{"add", s1(event.KindStatus, 3), true, map[event.Kind]int64{event.KindStatus: 3}},
			{"add", s1(event.KindStatus, 5), true, map[event.Kind]int64{event.KindStatus: 5}},
			{"add", s1(event.KindStatus, 4), true, map[event.Kind]int64{event.KindStatus: 5}},
		}},
		{"kinds are owed apart", 10, []step{
			{"add", s1(event.KindStatus, 3), true, map[event.Kind]int64{event.KindStatus: 3}},
			{"add", s1(event.KindQR, 4), true, map[event.Kind]int64{event.KindStatus: 3, event.KindQR: 4}},
			{"paid", s1(event.KindQR, 4), false, map[event.Kind]int64{event.KindStatus: 3}},
		}},
		{"a write of an older version pays nothing", 10, []step{
			{"add", s1(event.KindStatus, 5), true, map[event.Kind]int64{event.KindStatus: 5}},
			{"paid", s1(event.KindStatus, 4), false, map[event.Kind]int64{event.KindStatus: 5}},
			{"paid", s1(event.KindStatus, 6), false, map[event.Kind]int64{}},
		}},
		{"the bound refuses new sessions, not newer events of owed ones", 1, []step{
			{"add", s1(event.KindStatus, 5), true, map[event.Kind]int64{event.KindStatus: 5}},
			{"add", statusEvent("s2", 1, laravel.StatusPending), false, map[event.Kind]int64{event.KindStatus: 5}},
			{"add", s1(event.KindStatus, 6), true, map[event.Kind]int64{event.KindStatus: 6}},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := owedWrites{max: c.max}
			for i, st := range c.steps {
				if st.op == "add" {
					if ok := o.add(st.ev, 0); ok != st.ok {
						t.Fatalf("step %d: add = %v; want %v", i, ok, st.ok)
					}
				} else {
					o.paid(st.ev)
				}
				got := map[event.Kind]int64{}
				for _, w := range o.of("s1") {
					got[w.ev.Kind] = w.ev.Version
				}
				if len(got) != len(st.got) {
					t.Fatalf("step %d: owed %v; want %v", i, got, st.got)
				}
				for k, v := range st.got {
					if got[k] != v {
						t.Fatalf("step %d: owed %v; want %v", i, got, st.got)
					}
				}
			}
		})
	}
}

// Chaos seed 2 schedule 42: sessions created while Redis was paused had every write-through
// refused, so once Redis answered again they had no record in L2 and each status read asked
// Laravel (4.5 GET /api/whatsapp/sessions/{id} per second right after the pause, with the backlog
// of batches). The events Redis did not take are now owed: while Redis fails the reads answer
// from them, and the first read after it is back writes them again; Laravel is not asked.
func TestEventsRedisDidNotTakeAreServedAndWrittenAgainWithoutAskingLaravel(t *testing.T) {
	b := redistest.Mini(t)
	lv := &fakeLaravel{}
	c := newCache(t, b, lv, newClock(), "gw-a")
	d := c.WriteThrough(&recordingDelivery{})
	ctx := context.Background()

	b.Mini.SetError("LOADING Redis is loading the dataset in memory") // Redis refuses every command
	if err := d.Deliver(ctx, qrEvent("s1", 1, "2@code")); err != nil {
		t.Fatal(err)
	}
	if err := d.Deliver(ctx, statusEvent("s1", 2, laravel.StatusPending)); err != nil {
		t.Fatal(err)
	}
	if n := c.Counters().WriteErrors; n != 2 {
		t.Fatalf("write errors %d; want both write-throughs refused", n)
	}
	s, err := c.State(ctx, "s1")
	if err != nil || s.Status != laravel.StatusPending || s.StatusVersion != 2 {
		t.Fatalf("read while Redis fails: %+v, %v; want pending v2 from the owed events", s, err)
	}

	b.Mini.SetError("")
	c.FlushL1() // as after a reconnect
	s, err = c.State(ctx, "s1")
	if err != nil || s.Level != "l2" || s.Status != laravel.StatusPending || s.StatusVersion != 2 {
		t.Fatalf("first read after Redis is back: %+v, %v; want pending v2 from L2", s, err)
	}
	if n := lv.calls.Load(); n != 0 {
		t.Fatalf("Laravel asked %d times; want none: the gateway's own events answer", n)
	}
	// Written again, in the background: another replica (a fresh cache) reads it from L2 as well.
	waitPaid(t, c)
	other := newCache(t, b, lv, newClock(), "gw-b")
	if s := mustState(t, other, "s1"); s.Level != "l2" || s.StatusVersion != 2 || s.QRVersion != 0 {
		t.Fatalf("another replica reads %+v; want pending v2 from L2 (the older code is not current)", s)
	}
}

// waitPaid waits until c owes Redis nothing (its background writes of owed events went through).
func waitPaid(t *testing.T, c *Cache) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); c.owed.len() != 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions still owed 5 s after the read that writes them again", c.owed.len())
		}
	}
}

// scriptGate holds every script call (the cache's writes are Lua scripts) until it is opened,
// while reads go through: Redis answering reads and too slow for writes.
type scriptGate struct{ open chan struct{} }

func (scriptGate) DialHook(next redis.DialHook) redis.DialHook { return next }
func (scriptGate) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (g scriptGate) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if name := cmd.Name(); name == "evalsha" || name == "eval" {
			select {
			case <-g.open:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return next(ctx, cmd)
	}
}

// A status read that finds events this gateway still owes Redis answers from them at once and
// writes them again in the background: it does not wait for the writes (each up to WriteTimeout)
// that a slow Redis makes late, so the API's status reads keep their latency.
func TestAReadDoesNotWaitForTheOwedWritesItStarts(t *testing.T) {
	b := redistest.Mini(t)
	rdb := b.Client(t)
	gate := scriptGate{open: make(chan struct{})}
	rdb.AddHook(gate)
	c, err := New(context.Background(), rdb, &fakeLaravel{}, Config{GatewayID: "gw-a", WriteTimeout: 10 * time.Second,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	c.owe(statusEvent("s1", 3, laravel.StatusConnected)) // its write-through failed

	start := time.Now()
	s, err := c.State(context.Background(), "s1")
	took := time.Since(start)
	if err != nil || s.Status != laravel.StatusConnected || s.StatusVersion != 3 {
		t.Fatalf("read: %+v, %v; want connected v3 from the owed event", s, err)
	}
	if took > 2*time.Second {
		t.Fatalf("the read took %v: it waited for the owed write", took)
	}
	if n := c.owed.len(); n != 1 {
		t.Fatalf("%d sessions owed while the write is held; want 1", n)
	}
	close(gate.open)
	waitPaid(t, c)
	other := newCache(t, b, &fakeLaravel{}, newClock(), "gw-b")
	if s := mustState(t, other, "s1"); s.Level != "l2" || s.StatusVersion != 3 {
		t.Fatalf("another replica reads %+v; want connected v3 from L2", s)
	}
}

// writeDuringRead runs during once, right after the first HGETALL it sees answered and before
// that answer reaches the cache: a Record landing between a read's L2 read and its L1 write.
type writeDuringRead struct {
	once   sync.Once
	during func()
}

func (*writeDuringRead) DialHook(next redis.DialHook) redis.DialHook { return next }
func (*writeDuringRead) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (w *writeDuringRead) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if cmd.Name() == "hgetall" && w.during != nil {
			w.once.Do(w.during)
		}
		return err
	}
}

// cacheWithWriteDuringRead returns a cache of gateway gw-a on a miniredis whose client runs
// hook's during once, right after the first read of a session's L2 hash, and the cache's clock.
func cacheWithWriteDuringRead(t *testing.T) (*Cache, *writeDuringRead, *clock) {
	t.Helper()
	rdb := redistest.Mini(t).Client(t)
	hook := &writeDuringRead{}
	rdb.AddHook(hook)
	clk := newClock()
	c, err := New(context.Background(), rdb, &fakeLaravel{}, Config{GatewayID: "gw-a", Now: clk.Now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, hook, clk
}

// A read that read L2 before the owner's own write landed must not keep what it read in L1: the
// owner's L1 entry lives while its status is fresh (up to SessionTTL) and the owner gets no
// invalidation of its own writes, so the older status was served for minutes (a session connected
// but pending in the cache, isSessionActive false; seen as a pending-after-connected in ~40% of
// runs of a test polling the cache while a session connected).
func TestAReadRacingTheOwnersWriteDoesNotKeepTheOlderStatusInL1(t *testing.T) {
	c, hook, clk := cacheWithWriteDuringRead(t)
	ctx := context.Background()
	if err := c.Record(ctx, statusEvent("s1", 1, laravel.StatusPending)); err != nil {
		t.Fatal(err)
	}
	hook.during = func() {
		if err := c.Record(ctx, statusEvent("s1", 2, laravel.StatusConnected)); err != nil {
			t.Error(err)
		}
	}
	if s := mustState(t, c, "s1"); s.Status != laravel.StatusPending {
		t.Fatalf("racing read: %+v; want what it read, pending", s)
	}
	clk.Advance(time.Second) // within the status TTL: an L1 entry would still answer
	if s := mustState(t, c, "s1"); s.Status != laravel.StatusConnected || s.StatusVersion != 2 {
		t.Fatalf("next read: %+v; want connected v2, the owner's write (L1 kept the older read)", s)
	}
}

// A 10,000-session reconnect made 34,311 write-throughs fail in 20 s, one WARN line each (make
// bench-scale, issue 18): a log that floods exactly when an operator reads it. A storm of failures
// is one line a second; the next line says how many failures it stands for, and WriteErrors counts
// every one.
func TestAStormOfFailedWriteThroughsIsOneWarningASecond(t *testing.T) {
	b := redistest.Mini(t)
	clk := newClock()
	var logged bytes.Buffer
	c, err := New(context.Background(), b.Client(t), &fakeLaravel{}, Config{GatewayID: "gw-a", Now: clk.Now,
		Logger: slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	d := c.WriteThrough(&recordingDelivery{})
	ctx := context.Background()
	warnings := func() []string {
		var out []string
		for _, l := range strings.Split(strings.TrimSpace(logged.String()), "\n") {
			if strings.Contains(l, "write-through failed") {
				out = append(out, l)
			}
		}
		return out
	}

	// Every write-through fails (go-redis retries a LOADING error: ~0.1 s each).
	b.Mini.SetError("LOADING Redis is loading the dataset in memory")
	for i := range 20 {
		if err := d.Deliver(ctx, statusEvent(fmt.Sprintf("s%d", i), 1, laravel.StatusConnected)); err != nil {
			t.Fatal(err)
		}
	}
	if w := warnings(); len(w) != 1 || !strings.Contains(w[0], "session_id=s0 ") || strings.Contains(w[0], "similar_since_last_line") {
		t.Fatalf("20 failures within a second (the test's clock) logged %d warning lines %q; want one, the first's", len(w), w)
	}
	clk.Advance(time.Second)
	if err := d.Deliver(ctx, statusEvent("s20", 1, laravel.StatusConnected)); err != nil {
		t.Fatal(err)
	}
	if w := warnings(); len(w) != 2 || !strings.Contains(w[1], "session_id=s20 ") || !strings.Contains(w[1], "similar_since_last_line=19") {
		t.Fatalf("after a second: warning lines %q; want a second line for s20 standing for the 19 held back", w)
	}
	if n := c.Counters().WriteErrors; n != 21 {
		t.Fatalf("WriteErrors %d; want every one of the 21 failures counted", n)
	}
}
