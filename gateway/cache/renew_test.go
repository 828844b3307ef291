package cache

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"wagate/gateway/laravel"
	"wagate/gateway/session"
	"wagate/gateway/session/sessiontest"
	"wagate/internal/redistest"
)

// liveSessions is the session manager as the cache sees it: the sessions this gateway runs.
type liveSessions map[string]session.Info

func (l liveSessions) Get(_ context.Context, id string) (session.Info, error) {
	if info, ok := l[id]; ok {
		return info, nil
	}
	return session.Info{}, session.ErrNotFound
}

func (l liveSessions) List(context.Context, string, int) ([]session.Info, string, error) {
	return nil, "", nil
}

// An owned session's expired status is renewed from what the gateway runs, not looked up in
// Laravel, exactly when the gateway still holds that status at that version; everything else
// asks Laravel as before.
func TestAnExpiredStatusIsRenewedFromTheOwnersLiveStateOnlyWhenItStillHoldsIt(t *testing.T) {
	connected := func(v int64) session.Info {
		return session.Info{SessionID: "s1", Status: laravel.StatusConnected, Version: v, Connected: true}
	}
	for _, tc := range []struct {
		name        string
		live        LocalReader // nil: RenewFrom never called
		writer      string      // the gateway whose event is cached
		wantLookups int64       // Laravel lookups for the read after the status expired
	}{
		{"the owner runs it at the cached version", liveSessions{"s1": connected(1)}, "gw-a", 0},
		{"no live source", nil, "gw-a", 1},
		{"the owner has a newer event not yet written through", liveSessions{"s1": connected(2)}, "gw-a", 1},
		{"the owner's session changed status", liveSessions{"s1": {SessionID: "s1", Status: laravel.StatusDisconnected, Version: 1}}, "gw-a", 1},
		{"the owner no longer runs it", liveSessions{}, "gw-a", 1},
		{"another gateway wrote the record", liveSessions{"s1": connected(1)}, "gw-b", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
				ctx := context.Background()
				clk := newClock()
				lv := &fakeLaravel{sessions: map[string]laravel.SessionInfo{"s1": {SessionID: "s1", EstadoQR: laravel.StatusConnected, StatusVersion: 1, Enabled: true}}}
				c := newCache(t, b, lv, clk, "gw-a")
				if tc.live != nil {
					c.RenewFrom(tc.live)
				}
				writer := c
				if tc.writer != "gw-a" {
					writer = newCache(t, b, lv, clk, tc.writer)
				}
				if err := writer.Record(ctx, statusEvent("s1", 1, laravel.StatusConnected)); err != nil {
					t.Fatal(err)
				}
				mustState(t, c, "s1")
				// The first expiry asks Laravel whatever the owner knows: its enabled flag is not known yet.
				clk.Advance(DefaultConnectionTTL + time.Second)
				if s := mustState(t, c, "s1"); !s.Active() || lv.calls.Load() != 1 {
					t.Fatalf("first expiry: %+v after %d lookups; want active after 1", s, lv.calls.Load())
				}
				clk.Advance(DefaultConnectionTTL + time.Second)
				s := mustState(t, c, "s1")
				if got := lv.calls.Load() - 1; got != tc.wantLookups {
					t.Fatalf("Laravel asked %d times after the second expiry, want %d", got, tc.wantLookups)
				}
				if !s.HasStatus || s.Status != laravel.StatusConnected || !s.Active() {
					t.Fatalf("second expiry: %+v; want connected and active", s)
				}
				if renewed := c.Counters().OwnerRenewals; renewed != 1-tc.wantLookups {
					t.Fatalf("renewals %d, want %d", renewed, 1-tc.wantLookups)
				}
				// The renewal is in L2 too: a fresh L1 (or another process) reads it without Laravel.
				if tc.wantLookups == 0 {
					c.FlushL1()
					if s := mustState(t, c, "s1"); s.Level != "l2" || !s.Active() || lv.calls.Load() != 1 {
						t.Fatalf("after an L1 flush: %+v, %d lookups; want the renewed status from l2, no lookup", s, lv.calls.Load())
					}
				}
			})
		})
	}
}

// Laravel's enabled flag is still honoured: the owner asks Laravel once per SessionTTL (instead of
// once per ConnectionTTL), and a session Laravel disabled stops being active within SessionTTL +
// ConnectionTTL.
func TestTheOwnerStillAsksLaravelOncePerSessionTTLAndHonoursADisable(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		clk := newClock()
		lv := &fakeLaravel{sessions: map[string]laravel.SessionInfo{"s1": {SessionID: "s1", EstadoQR: laravel.StatusConnected, StatusVersion: 1, Enabled: true}}}
		c := newCache(t, b, lv, clk, "gw-a")
		c.RenewFrom(liveSessions{"s1": {SessionID: "s1", Status: laravel.StatusConnected, Version: 1, Connected: true}})
		if err := c.Record(ctx, statusEvent("s1", 1, laravel.StatusConnected)); err != nil {
			t.Fatal(err)
		}
		// Polled every 10 s for 20 minutes: before, one lookup per ConnectionTTL (~20).
		step := 10 * time.Second
		for range int(20 * time.Minute / step) {
			clk.Advance(step)
			if s := mustState(t, c, "s1"); !s.Active() {
				t.Fatalf("at %s: %+v; want active", clk.Now().Format(time.TimeOnly), s)
			}
		}
		if n := lv.calls.Load(); n < 3 || n > 5 {
			t.Fatalf("%d Laravel lookups in 20 minutes; want one per SessionTTL (5 min) and a bit: 3-5", n)
		}
		lv.mu.Lock()
		lv.sessions["s1"] = laravel.SessionInfo{SessionID: "s1", EstadoQR: laravel.StatusConnected, StatusVersion: 1, Enabled: false}
		lv.mu.Unlock()
		disabledAt := clk.Now()
		for clk.Now().Sub(disabledAt) <= DefaultSessionTTL+DefaultConnectionTTL {
			clk.Advance(step)
			if active, err := c.IsSessionActive(ctx, "s1"); err != nil {
				t.Fatal(err)
			} else if !active {
				return
			}
		}
		t.Fatalf("still active %s after Laravel disabled it; want inactive within SessionTTL + ConnectionTTL", clk.Now().Sub(disabledAt))
	})
}

// managedSessions numbers the session ids of TestTheSessionManagersConnectedSessionIsRenewedFromItsOwnEvents.
var managedSessions atomic.Int64

// The session manager is the live source the gateway wires (gateway/app): the status and version
// its Get answers are those of the events it wrote through this cache, so its connected session
// is renewed, not looked up, at its second expiry.
func TestTheSessionManagersConnectedSessionIsRenewedFromItsOwnEvents(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		clk := newClock()
		// An id of its own: with -count the redis-server (and an earlier run's s1) is shared.
		sid := fmt.Sprintf("live-%d", managedSessions.Add(1))
		lv := &fakeLaravel{sessions: map[string]laravel.SessionInfo{sid: {SessionID: sid, EstadoQR: laravel.StatusConnected, StatusVersion: 1, Enabled: true}}}
		c := newCache(t, b, lv, clk, "gw-a")
		drv, sink := sessiontest.NewDriver(), &sessiontest.Sink{}
		m, err := session.New(ctx, session.Config{Logger: slog.New(slog.DiscardHandler)}, drv, sessiontest.NewStore(), c.WriteThrough(sink))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = m.Close(context.Background()) })
		c.RenewFrom(m)
		if _, err := m.Start(ctx, sid); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the first QR code", func() bool { info, err := m.Get(ctx, sid); return err == nil && info.QR != "" })
		drv.Conn(sid).Scan()
		// Waits for the write-through of connected (it records before it delivers): a read racing
		// a write is TestAReadRacingTheOwnersWriteDoesNotKeepTheOlderStatusInL1's subject.
		waitFor(t, "the connected status written through", func() bool { return slices.Contains(sink.Of(sid), "status:connected") })
		if s := mustState(t, c, sid); s.Status != laravel.StatusConnected {
			t.Fatalf("after the write-through: %+v; want connected", s)
		}
		clk.Advance(DefaultConnectionTTL + time.Second)
		mustState(t, c, sid) // Laravel's flag is learned at the first expiry
		calls := lv.calls.Load()
		clk.Advance(DefaultConnectionTTL + time.Second)
		if s := mustState(t, c, sid); !s.Active() || lv.calls.Load() != calls || c.Counters().OwnerRenewals != 1 {
			t.Fatalf("second expiry: %+v, %d more lookups, %d renewals; want active, renewed from the manager, no lookup",
				s, lv.calls.Load()-calls, c.Counters().OwnerRenewals)
		}
	})
}
