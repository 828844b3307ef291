package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"wagate/gateway/event"
	"wagate/gateway/laravel"
	"wagate/internal/redistest"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// fakeLaravel answers GetSession from a map; unknown sessions are 404s.
type fakeLaravel struct {
	mu       sync.Mutex
	sessions map[string]laravel.SessionInfo
	calls    atomic.Int64
	gate     func()
}

func (f *fakeLaravel) GetSession(_ context.Context, sid string) (laravel.SessionInfo, error) {
	f.calls.Add(1)
	if f.gate != nil {
		f.gate()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	info, ok := f.sessions[sid]
	if !ok {
		return laravel.SessionInfo{}, &laravel.StatusError{Endpoint: laravel.EndpointSession, Status: http.StatusNotFound}
	}
	return info, nil
}

func newCache(t testing.TB, b *redistest.Backend, lv SessionLookup, clk *clock, id string) *Cache {
	t.Helper()
	c, err := New(context.Background(), b.Client(t), lv, Config{GatewayID: id, Now: clk.Now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitSubscribed(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func statusEvent(sid string, ver int64, st laravel.Status) event.Event {
	return event.Event{ID: fmt.Sprintf("%s-%d", sid, ver), SessionID: sid, Kind: event.KindStatus, Payload: string(st),
		Version: ver, Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Priority: event.PriorityOf(event.KindStatus, string(st))}
}

func qrEvent(sid string, ver int64, qr string) event.Event {
	return event.Event{ID: fmt.Sprintf("%s-%d", sid, ver), SessionID: sid, Kind: event.KindQR, Payload: qr,
		Version: ver, Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func mustState(t *testing.T, c *Cache, sid string) State {
	t.Helper()
	s, err := c.State(context.Background(), sid)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTheGatewaysOwnEventsAreServedFromL2ThenL1WithoutAskingLaravel(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		lv := &fakeLaravel{}
		c := newCache(t, b, lv, newClock(), "gw-a")
		if err := c.Record(ctx, qrEvent("s1", 1, "2@qr")); err != nil {
			t.Fatal(err)
		}
		if err := c.Record(ctx, statusEvent("s1", 2, laravel.StatusConnected)); err != nil {
			t.Fatal(err)
		}
		s := mustState(t, c, "s1")
		if s.Level != "l2" || s.Status != laravel.StatusConnected || s.QR != "" || !s.Active() {
			t.Fatalf("first read %+v; want connected from L2, its pairing QR no longer served", s)
		}
		if s := mustState(t, c, "s1"); s.Level != "l1" {
			t.Fatalf("second read from %s; want l1", s.Level)
		}
		// A write-through updates L1 in place: read-your-own-write without a Redis round trip.
		if err := c.Record(ctx, statusEvent("s1", 3, laravel.StatusDisconnected)); err != nil {
			t.Fatal(err)
		}
		if s := mustState(t, c, "s1"); s.Level != "l1" || s.Status != laravel.StatusDisconnected {
			t.Fatalf("after write-through: %+v; want disconnected from l1", s)
		}
		if active, err := c.IsSessionActive(ctx, "s1"); err != nil || active {
			t.Fatalf("IsSessionActive = %v, %v; want false", active, err)
		}
		ct := c.Counters()
		if lv.calls.Load() != 0 || ct.L1Hits != 3 || ct.L2Hits != 1 {
			t.Fatalf("laravel calls %d, counters %+v", lv.calls.Load(), ct)
		}
	})
}

func TestAnOlderVersionNeverOverwritesANewerOne(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		c := newCache(t, b, &fakeLaravel{}, newClock(), "gw-a")
		_ = c.Record(ctx, statusEvent("s1", 5, laravel.StatusConnected))
		_ = c.Record(ctx, statusEvent("s1", 3, laravel.StatusPending))
		mustState(t, c, "s1") // L1 now holds the L2 record
		_ = c.Record(ctx, statusEvent("s1", 4, laravel.StatusExpired))
		s := mustState(t, c, "s1")
		if s.StatusVersion != 5 || s.Status != laravel.StatusConnected {
			t.Fatalf("state %+v; want version 5 connected", s)
		}
		c.FlushL1()
		if s := mustState(t, c, "s1"); s.StatusVersion != 5 || s.Level != "l2" {
			t.Fatalf("L2 state %+v; want version 5", s)
		}
		if c.Counters().StaleWrites != 2 {
			t.Fatalf("stale writes %d; want 2", c.Counters().StaleWrites)
		}
	})
}

func TestUnknownToTheGatewayIsAskedOfLaravelOnceThenCachedPerLevelAndTTL(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		clk := newClock()
		lv := &fakeLaravel{sessions: map[string]laravel.SessionInfo{
			"s1": {SessionID: "s1", EstadoQR: laravel.StatusConnected, Enabled: true, Active: true, StatusVersion: 9},
		}}
		c := newCache(t, b, lv, clk, "gw-a")
		if s := mustState(t, c, "s1"); s.Level != "l3" || !s.Active() || s.StatusVersion != 9 {
			t.Fatalf("first read %+v; want active from l3", s)
		}
		if s := mustState(t, c, "s1"); s.Level != "l1" {
			t.Fatalf("second read from %s; want l1", s.Level)
		}
		clk.Advance(DefaultL1TTL)
		if s := mustState(t, c, "s1"); s.Level != "l2" {
			t.Fatalf("read after the L1 TTL from %s; want l2", s.Level)
		}
		clk.Advance(DefaultConnectionTTL)
		if s := mustState(t, c, "s1"); s.Level != "l3" {
			t.Fatalf("read after the connection TTL from %s; want l3", s.Level)
		}
		if n := lv.calls.Load(); n != 2 {
			t.Fatalf("Laravel asked %d times; want 2", n)
		}
		ct := c.Counters()
		if ct.L1Hits != 1 || ct.L2Hits != 1 || ct.L3Hits != 2 || ct.L2Misses != 2 {
			t.Fatalf("counters %+v", ct)
		}
	})
}

func TestADisabledSessionIsNotActiveEvenWhenConnected(t *testing.T) {
	b := redistest.Mini(t)
	lv := &fakeLaravel{sessions: map[string]laravel.SessionInfo{
		"s1": {SessionID: "s1", EstadoQR: laravel.StatusConnected, Enabled: false, StatusVersion: 1},
	}}
	c := newCache(t, b, lv, newClock(), "gw-a")
	if active, err := c.IsSessionActive(context.Background(), "s1"); err != nil || active {
		t.Fatalf("IsSessionActive = %v, %v; want false for a disabled session", active, err)
	}
}

func TestUnknownSessionsAreCachedNegatively(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		clk := newClock()
		lv := &fakeLaravel{}
		c := newCache(t, b, lv, clk, "gw-a")
		for i := 0; i < 3; i++ {
			if _, err := c.State(ctx, "ghost"); !errors.Is(err, ErrUnknownSession) {
				t.Fatalf("read %d: %v; want ErrUnknownSession", i, err)
			}
		}
		if active, err := c.IsSessionActive(ctx, "ghost"); err != nil || active {
			t.Fatalf("IsSessionActive = %v, %v", active, err)
		}
		if n := lv.calls.Load(); n != 1 {
			t.Fatalf("Laravel asked %d times within the negative TTL; want 1", n)
		}
		clk.Advance(DefaultNegativeTTL)
		_, _ = c.State(ctx, "ghost")
		if n := lv.calls.Load(); n != 2 {
			t.Fatalf("Laravel asked %d times after the negative TTL; want 2", n)
		}
		// The gateway's own event makes the session known at once.
		if err := c.Record(ctx, statusEvent("ghost", 1, laravel.StatusPending)); err != nil {
			t.Fatal(err)
		}
		if s := mustState(t, c, "ghost"); s.Status != laravel.StatusPending {
			t.Fatalf("state %+v after the gateway's own event", s)
		}
		if c.Counters().NegativeHits < 3 {
			t.Fatalf("negative hits %d", c.Counters().NegativeHits)
		}
	})
}

// waitingInSingleflight counts goroutines blocked waiting for another caller's flight.
func waitingInSingleflight() int {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	count := 0
	for _, g := range strings.Split(string(buf[:n]), "\n\n") {
		if strings.Contains(g, "singleflight.(*Group).Do") && strings.Contains(g, "sync.(*WaitGroup).Wait") {
			count++
		}
	}
	return count
}

func TestConcurrentMissesShareOneLaravelLookup(t *testing.T) {
	b := redistest.Mini(t)
	release := make(chan struct{})
	lv := &fakeLaravel{sessions: map[string]laravel.SessionInfo{"s1": {SessionID: "s1", EstadoQR: laravel.StatusPending, StatusVersion: 1}}}
	lv.gate = func() { <-release }
	c := newCache(t, b, lv, newClock(), "gw-a")
	const callers = 10
	var wg sync.WaitGroup
	for i := 0; i < callers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.State(context.Background(), "s1"); err != nil {
				t.Error(err)
			}
		}()
	}
	deadline := time.Now().Add(30 * time.Second)
	for waitingInSingleflight() < callers-1 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d callers joined the flight", waitingInSingleflight())
		}
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	if n := lv.calls.Load(); n != 1 {
		t.Fatalf("Laravel asked %d times for %d concurrent misses; want 1", n, callers)
	}
	if c.Counters().L3Shared != callers {
		t.Fatalf("shared %d; want %d", c.Counters().L3Shared, callers)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestAWriteOnOneGatewayInvalidatesTheOthersL1(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		clk := newClock()
		a := newCache(t, b, &fakeLaravel{}, clk, "gw-a")
		other := newCache(t, b, &fakeLaravel{}, clk, "gw-b")
		_ = a.Record(ctx, statusEvent("s1", 1, laravel.StatusPending))
		// The first write's invalidation reaches gw-b too; on a loaded machine it could arrive
		// after the reads below and be taken for the second write's (CI at 90a9a9c).
		waitFor(t, "gw-b to receive the first write's invalidation", func() bool { return other.Counters().InvalidationsRx >= 1 })
		mustState(t, other, "s1")
		if s := mustState(t, other, "s1"); s.Level != "l1" || s.Status != laravel.StatusPending {
			t.Fatalf("gw-b %+v; want pending from its L1", s)
		}
		before := other.Counters().InvalidationsRx
		if err := a.Record(ctx, statusEvent("s1", 2, laravel.StatusConnected)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "gw-b to receive the invalidation", func() bool { return other.Counters().InvalidationsRx > before })
		if s := mustState(t, other, "s1"); s.Level != "l2" || s.Status != laravel.StatusConnected {
			t.Fatalf("gw-b after invalidation %+v; want connected from l2", s)
		}
		if a.Counters().InvalidationsRx != 0 {
			t.Fatal("a gateway invalidated itself with its own message")
		}
	})
}

func TestL1IsFlushedWhenTheRedisConnectionComesBack(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		c := newCache(t, b, &fakeLaravel{}, newClock(), "gw-a")
		_ = c.Record(ctx, statusEvent("s1", 1, laravel.StatusPending))
		mustState(t, c, "s1")
		if b.Real != nil {
			if err := b.Real.Restart(); err != nil {
				t.Fatal(err)
			}
		} else {
			b.Mini.Close()
			if err := b.Mini.Restart(); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, "the L1 flush on reconnect", func() bool { return c.Counters().L1Flushes == 1 })
		if c.L1Size() != 0 {
			t.Fatalf("L1 holds %d entries after the flush", c.L1Size())
		}
	})
}

func TestKeyCountsFollowTheTTLs(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		clk := newClock()
		c := newCache(t, b, &fakeLaravel{}, clk, "gw-a")
		_ = c.Record(ctx, qrEvent("s1", 1, "qr"))
		_ = c.Record(ctx, statusEvent("s1", 2, laravel.StatusPending))
		_ = c.Record(ctx, statusEvent("s2", 1, laravel.StatusPending))
		kc, err := c.KeyCounts(ctx)
		if err != nil || kc != (KeyCounts{Total: 2, QR: 1, Status: 2}) {
			t.Fatalf("key counts %+v, %v", kc, err)
		}
		clk.Advance(DefaultQRTTL)
		if kc, _ := c.KeyCounts(ctx); kc != (KeyCounts{Total: 2, QR: 0, Status: 2}) {
			t.Fatalf("after the QR TTL %+v", kc)
		}
		if s := mustState(t, c, "s1"); s.QR != "" {
			t.Fatalf("an expired QR is still served: %+v", s)
		}
	})
}

// GET /metrics/cache answers the snapshot as JSON (the Prometheus series are gateway/metrics').
func TestMetricsAnswerAsJSON(t *testing.T) {
	b := redistest.Mini(t)
	c := newCache(t, b, &fakeLaravel{}, newClock(), "gw-a")
	_ = c.Record(context.Background(), qrEvent("s1", 1, "qr"))
	mustState(t, c, "s1")
	rec := httptest.NewRecorder()
	c.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics/cache", nil))
	for _, k := range []string{`"sessions":1`, `"qr_values":1`, `"status_values":0`, `"totalKeys":1`, `"qrKeys":1`, `"statusKeys":0`, `"l1":{"hits":0,"misses":1`, `"l2":{"hits":`, `"l3":{`, `"hit_ratio":`} {
		if !strings.Contains(rec.Body.String(), k) {
			t.Errorf("/metrics/cache lacks %s: %s", k, rec.Body.String())
		}
	}
}

// The snapshot counts each cached value once, and the sessions apart: one QR code and two
// statuses of two sessions are 1 QR key, 2 status keys and 2 sessions (gateway/metrics exposes
// them as wagate_cache_keys{kind} and wagate_cache_sessions, so sum(wagate_cache_keys) is 3).
func TestTheSnapshotCountsEachCachedValueOnce(t *testing.T) {
	b := redistest.Mini(t)
	c := newCache(t, b, &fakeLaravel{}, newClock(), "gw-a")
	ctx := context.Background()
	_ = c.Record(ctx, qrEvent("s1", 1, "qr"))
	_ = c.Record(ctx, statusEvent("s1", 2, laravel.StatusPending))
	_ = c.Record(ctx, statusEvent("s2", 1, laravel.StatusConnected))
	m := c.Snapshot(ctx)
	if m.QRKeys != 1 || m.StatusKeys != 2 || m.TotalKeys != 2 {
		t.Fatalf("QR keys %d (want 1), status keys %d (want 2), sessions %d (want 2)", m.QRKeys, m.StatusKeys, m.TotalKeys)
	}
}

type recordingDelivery struct {
	got    []event.Event
	closed bool
}

func (r *recordingDelivery) Deliver(_ context.Context, ev event.Event) error {
	r.got = append(r.got, ev)
	return nil
}
func (r *recordingDelivery) Close(context.Context) error { r.closed = true; return nil }

func TestWriteThroughRecordsEachEventBeforeDelivering(t *testing.T) {
	b := redistest.Mini(t)
	c := newCache(t, b, &fakeLaravel{}, newClock(), "gw-a")
	next := &recordingDelivery{}
	d := c.WriteThrough(next)
	if err := d.Deliver(context.Background(), statusEvent("s1", 1, laravel.StatusConnected)); err != nil {
		t.Fatal(err)
	}
	if len(next.got) != 1 {
		t.Fatal("event not handed on")
	}
	if active, err := c.IsSessionActive(context.Background(), "s1"); err != nil || !active {
		t.Fatalf("IsSessionActive = %v, %v after write-through", active, err)
	}
	// Redis down: delivery still happens, the failure is counted.
	b.Mini.Close()
	if err := d.Deliver(context.Background(), statusEvent("s1", 2, laravel.StatusDisconnected)); err != nil {
		t.Fatal(err)
	}
	if len(next.got) != 2 || c.Counters().WriteErrors != 1 {
		t.Fatalf("delivered %d, write errors %d", len(next.got), c.Counters().WriteErrors)
	}
	_ = d.Close(context.Background())
	if !next.closed {
		t.Fatal("Close not passed on")
	}
}

func TestTheOwnerKeepsItsSessionsInL1WhileFreshOthersOnlyForTheL1TTL(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		clk := newClock()
		owner := newCache(t, b, &fakeLaravel{}, clk, "gw-a")
		other := newCache(t, b, &fakeLaravel{}, clk, "gw-b")
		if err := owner.Record(ctx, statusEvent("s1", 1, laravel.StatusConnected)); err != nil {
			t.Fatal(err)
		}
		mustState(t, owner, "s1")
		mustState(t, other, "s1")
		clk.Advance(10 * DefaultL1TTL) // well past L1's TTL, within the connection TTL
		if s := mustState(t, owner, "s1"); s.Level != "l1" || !s.Active() {
			t.Fatalf("owner read %+v; want its own session from l1 (no Redis round trip)", s)
		}
		if s := mustState(t, other, "s1"); s.Level != "l2" {
			t.Fatalf("non-owner read from %s; want l2 after the L1 TTL", s.Level)
		}
		clk.Advance(DefaultConnectionTTL) // the status is no longer fresh: L1 lets go of it
		if s, err := owner.State(ctx, "s1"); err == nil && s.Level == "l1" {
			t.Fatalf("owner served an expired status from l1: %+v", s)
		}
	})
}

func TestALaravelAnswerElsewhereInvalidatesTheOwnersL1(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		clk := newClock()
		lv := &fakeLaravel{sessions: map[string]laravel.SessionInfo{"s1": {SessionID: "s1", EstadoQR: laravel.StatusConnected, StatusVersion: 1, Enabled: false}}}
		owner := newCache(t, b, lv, clk, "gw-a")
		other := newCache(t, b, lv, clk, "gw-b")
		if err := owner.Record(ctx, statusEvent("s1", 1, laravel.StatusConnected)); err != nil {
			t.Fatal(err)
		}
		if active, _ := owner.IsSessionActive(ctx, "s1"); !active {
			t.Fatal("owner: connected session not active")
		}
		// The other gateway's key has expired: it asks Laravel, which says disabled.
		if err := b.Client(t).Del(ctx, DefaultKeyPrefix+"s1").Err(); err != nil {
			t.Fatal(err)
		}
		before := owner.Counters().InvalidationsRx
		if active, err := other.IsSessionActive(ctx, "s1"); err != nil || active {
			t.Fatalf("other: IsSessionActive = %v, %v; want false (disabled in Laravel)", active, err)
		}
		waitFor(t, "the owner to receive the invalidation", func() bool { return owner.Counters().InvalidationsRx > before })
		if active, err := owner.IsSessionActive(ctx, "s1"); err != nil || active {
			t.Fatalf("owner: IsSessionActive = %v, %v; want false once Laravel's answer is known", active, err)
		}
	})
}

// A status read that misses L1 reads L2 through Config.Reads: while every connection of the
// write-throughs' client is held (here its only one, in a blocking command; in production a
// reconnect storm's writes), the read is answered from Redis at once, without waiting for a
// connection and without asking Laravel. With one client for both, the same read waits for the
// held connection until its deadline and then asks Laravel.
func TestStatusReadsDoNotQueueBehindWritesHoldingTheirConnections(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		for _, tc := range []struct {
			name        string
			ownReads    bool
			wantLaravel bool
		}{
			{"reads with connections of their own", true, false},
			{"reads sharing the writes' connections", false, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ctx := context.Background()
				writes := redis.NewClient(&redis.Options{Addr: b.Addr, Protocol: 2, PoolSize: 1, PoolTimeout: 5 * time.Second})
				t.Cleanup(func() { _ = writes.Close() })
				cfg := Config{GatewayID: "gw-a", Now: newClock().Now, Logger: slog.New(slog.DiscardHandler)}
				if tc.ownReads {
					cfg.Reads = b.Client(t)
				}
				lv := &fakeLaravel{sessions: map[string]laravel.SessionInfo{
					"s1": {EstadoQR: laravel.StatusConnected, StatusVersion: 1, Enabled: true}}}
				c, err := New(ctx, writes, lv, cfg)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = c.Close() })
				sid := fmt.Sprintf("s-%v", tc.ownReads)
				if err := c.Record(ctx, statusEvent(sid, 2, laravel.StatusConnected)); err != nil {
					t.Fatal(err) // in L2 only: L1 keeps what a read brought
				}
				held := make(chan error, 1)
				go func() { held <- writes.BLPop(ctx, 2*time.Second, "nothing").Err() }()
				time.Sleep(100 * time.Millisecond)
				rctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
				defer cancel()
				s, err := c.State(rctx, sid)
				<-held
				askedLaravel := lv.calls.Load() > 0
				if askedLaravel != tc.wantLaravel {
					t.Fatalf("read %+v, %v; asked Laravel %v, want %v", s, err, askedLaravel, tc.wantLaravel)
				}
				if !tc.wantLaravel && (err != nil || s.Level != "l2" || s.Status != laravel.StatusConnected) {
					t.Fatalf("read %+v, %v; want connected from L2", s, err)
				}
			})
		}
	})
}
