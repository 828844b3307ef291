package run

import (
	"context"
	"testing"
	"time"

	"wagate/simulator/fakewa"
)

// eventLog is a waSide that only has an event log (what phones.poll reads).
type eventLog struct {
	waSide
	events []fakewa.Event
}

func (l *eventLog) EventsSince(_ context.Context, seq uint64) ([]fakewa.Event, error) {
	var out []fakewa.Event
	for _, e := range l.events {
		if e.Seq > seq {
			out = append(out, e)
		}
	}
	return out, nil
}

func (l *eventLog) add(kind fakewa.EventKind, jid string) {
	l.events = append(l.events, fakewa.Event{Seq: uint64(len(l.events) + 1), Kind: kind, JID: jid})
}

// A fault's recovery waits for the devices online before it to be back, except those that cannot
// come back by themselves: logged out or replaced meanwhile. A replaced device that logs in
// again counts again.
func TestRecoveryCountsOnlyTheDevicesThatCanComeBack(t *testing.T) {
	ctx := context.Background()
	log := &eventLog{}
	p := newPhones(log)
	for _, j := range []string{"a", "b", "c", "d"} {
		log.add(fakewa.EventConnected, j)
	}
	before := []string{"a", "b", "c", "d"}
	steps := []struct {
		name                string
		events              [][2]string // kind, jid
		online, canComeBack int
	}{
		{"all online", nil, 4, 4},
		{"a drop disconnects two", [][2]string{{string(fakewa.EventDisconnected), "a"}, {string(fakewa.EventDisconnected), "b"}}, 2, 4},
		{"one of them is logged out by its user", [][2]string{{string(fakewa.EventLoggedOut), "b"}}, 2, 3},
		{"another's stream is replaced", [][2]string{{string(fakewa.EventReplaced), "c"}}, 1, 2},
		{"the dropped one reconnects", [][2]string{{string(fakewa.EventConnected), "a"}}, 2, 2},
		{"the replaced one logs in again", [][2]string{{string(fakewa.EventConnected), "c"}}, 3, 3},
	}
	for _, s := range steps {
		for _, e := range s.events {
			log.add(fakewa.EventKind(e[0]), e[1])
		}
		if err := p.poll(ctx); err != nil {
			t.Fatal(err)
		}
		online, expected := p.Back(before, nil)
		if online != s.online || expected != s.canComeBack {
			t.Errorf("%s: %d online of %d that can come back, want %d of %d", s.name, online, expected, s.online, s.canComeBack)
		}
	}
}

// A fault's recovery does not wait for a device whose session its user logged out: its logout
// ended the session whether or not it reached WhatsApp. A logout the gateway answered while
// WhatsApp was unreachable forgets the device in the gateway only, and fakewa, like the phone,
// still lists it and never sees it log out (chaos seed 1 whatsapp-down, schedules 1, 4, 7 and
// 10: each fault "not recovered", every device awaited logged out this way). Every device whose
// session should still run is awaited.
func TestRecoveryDoesNotAwaitADeviceWhoseUserLoggedItsSessionOut(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		// events are fakewa's after the device's login, before the fault
		events []fakewa.EventKind
		// userLoggedOut: the ledger expects its session logged out (truth.Ledger.LoggedOut)
		userLoggedOut          bool
		wantOnline, wantAwaits int
	}{
		{"cut by the outage, its session still running", []fakewa.EventKind{fakewa.EventDisconnected}, false, 0, 1},
		{"cut by the outage and reconnected", []fakewa.EventKind{fakewa.EventDisconnected, fakewa.EventConnected}, false, 1, 1},
		{"never cut", nil, false, 1, 1},
		{"cut, then logged out through the gateway while WhatsApp was unreachable", []fakewa.EventKind{fakewa.EventDisconnected}, true, 0, 0},
		{"logged out through the gateway while still online (the logout on its way)", nil, true, 0, 0},
		{"logged out through the gateway, WhatsApp told", []fakewa.EventKind{fakewa.EventLoggedOut}, true, 0, 0},
		{"logged out from the phone", []fakewa.EventKind{fakewa.EventLoggedOut}, false, 0, 0},
		{"its stream replaced", []fakewa.EventKind{fakewa.EventReplaced}, false, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			log := &eventLog{}
			log.add(fakewa.EventConnected, "d")
			for _, k := range c.events {
				log.add(k, "d")
			}
			p := newPhones(log)
			if err := p.poll(ctx); err != nil {
				t.Fatal(err)
			}
			userEnded := map[string]bool{"other": true}
			if c.userLoggedOut {
				userEnded["d"] = true
			}
			online, awaits := p.Back([]string{"d"}, userEnded)
			if online != c.wantOnline || awaits != c.wantAwaits {
				t.Errorf("%d online of %d awaited, want %d of %d", online, awaits, c.wantOnline, c.wantAwaits)
			}
			if missing := p.Missing([]string{"d"}, userEnded); (len(missing) == 1) != (c.wantAwaits == 1 && c.wantOnline == 0) {
				t.Errorf("named as missing: %v", missing)
			}
		})
	}
}

// The end of the drain gives each recovery watch a last look before stopping it: a watch that
// would see the recovery a few polls later (the outbox emptied at the drain's very end) records a
// recovery, and one that would not is stopped within the bound.
func TestTheEndOfTheDrainGivesEachRecoveryWatchALastLook(t *testing.T) {
	r := &runner{}
	r.rec.init()
	var recovered, stopped bool
	r.rec.wg.Go(func() { // recovers 3 polls later
		select {
		case <-time.After(600 * time.Millisecond):
			recovered = true
		case <-r.rec.ctx.Done():
		}
	})
	r.rec.wg.Go(func() { // never recovers
		<-r.rec.ctx.Done()
		stopped = true
	})
	start := time.Now()
	r.finishRecoveries()
	if !recovered {
		t.Error("a watch about to see the recovery was stopped first")
	}
	if !stopped {
		t.Error("a watch that never recovers was not stopped")
	}
	if took := time.Since(start); took > 5*recoveryLastLook {
		t.Errorf("finishing the watches took %s, bound %s", took, recoveryLastLook)
	}
}

// A device can have two connections for a moment, and fakewa records each connection's end when
// its handler ends: the disconnection of a connection the device already left by a newer login
// (a drop whose handler ended after the reconnect, a login while the previous connection was
// still open) comes after the new login's connected event. Only the end of the connection the
// device is logged in on takes it offline (chaos seed 1, schedule 45: dropped devices counted
// offline for good although connected again, "whatsapp-drop-1 not recovered").
func TestOnlyTheEndOfTheConnectionADeviceIsLoggedInOnTakesItOffline(t *testing.T) {
	ev := func(kind fakewa.EventKind, conn uint64, detail string) fakewa.Event {
		return fakewa.Event{Kind: kind, JID: "d", Conn: conn, Detail: detail}
	}
	cases := []struct {
		name   string
		events []fakewa.Event
		online bool
		ended  bool // logged out or replaced: it does not come back by itself
	}{
		{"a drop", []fakewa.Event{
			ev(fakewa.EventConnected, 1, ""), ev(fakewa.EventDropped, 1, ""), ev(fakewa.EventDisconnected, 1, "dropped by server"),
		}, false, false},
		{"a drop and the reconnect", []fakewa.Event{
			ev(fakewa.EventConnected, 1, ""), ev(fakewa.EventDropped, 1, ""), ev(fakewa.EventDisconnected, 1, "dropped by server"),
			ev(fakewa.EventConnected, 2, ""),
		}, true, false},
		{"a drop whose connection ends after the reconnect", []fakewa.Event{
			ev(fakewa.EventConnected, 1, ""), ev(fakewa.EventDropped, 1, ""), ev(fakewa.EventConnected, 2, ""),
			ev(fakewa.EventDisconnected, 1, "dropped by server"),
		}, true, false},
		{"a second login replacing an open connection", []fakewa.Event{
			ev(fakewa.EventConnected, 1, ""), ev(fakewa.EventReplaced, 1, "new login"), ev(fakewa.EventConnected, 2, ""),
			ev(fakewa.EventDisconnected, 1, "replaced by new login"),
		}, true, false},
		{"the new connection drops too", []fakewa.Event{
			ev(fakewa.EventConnected, 1, ""), ev(fakewa.EventDropped, 1, ""), ev(fakewa.EventConnected, 2, ""),
			ev(fakewa.EventDisconnected, 1, "dropped by server"), ev(fakewa.EventDropped, 2, ""), ev(fakewa.EventDisconnected, 2, "dropped by server"),
		}, false, false},
		{"replaced by another client", []fakewa.Event{
			ev(fakewa.EventConnected, 1, ""), ev(fakewa.EventReplaced, 1, "control"), ev(fakewa.EventDisconnected, 1, "replaced"),
		}, false, true},
		{"logged out while offline", []fakewa.Event{
			ev(fakewa.EventConnected, 1, ""), ev(fakewa.EventDisconnected, 1, "dropped by server"), ev(fakewa.EventLoggedOut, 0, "device_removed while offline"),
		}, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			log := &eventLog{}
			for i, e := range c.events {
				e.Seq = uint64(i + 1)
				log.events = append(log.events, e)
			}
			p := newPhones(log)
			if err := p.poll(context.Background()); err != nil {
				t.Fatal(err)
			}
			online, expected := p.Back([]string{"d"}, nil)
			if got := online == 1; got != c.online {
				t.Errorf("online = %v, want %v", got, c.online)
			}
			if ended := expected == 0; ended != c.ended {
				t.Errorf("cannot come back = %v, want %v", ended, c.ended)
			}
			// A recovery that did not happen names the devices still awaited.
			if missing, want := len(p.Missing([]string{"d"}, nil)), !c.online && !c.ended; (missing == 1) != want {
				t.Errorf("named as missing: %v, want %v", p.Missing([]string{"d"}, nil), want)
			}
		})
	}
}
