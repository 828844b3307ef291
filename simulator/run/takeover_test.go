package run

import (
	"context"
	"testing"
	"time"

	"wagate/simulator/fakewa"
)

// After a replica's SIGKILL the takeover watch waits for the devices that went offline with it
// (online before, offline since the kill), and for nothing else: devices of the survivors that
// never dropped, devices that dropped before the kill, and devices logged out or replaced since
// (they do not come back by themselves). A device back counts once it connected after it went
// offline; the takeover's time is the latest such connect.
func TestTheTakeoverWaitsForTheDevicesTheKilledReplicaHeld(t *testing.T) {
	ctx := context.Background()
	kill := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return kill.Add(d) }
	log := &eventLog{}
	p := newPhones(log)
	add := func(kind fakewa.EventKind, jid string, when time.Time) {
		log.events = append(log.events, fakewa.Event{Seq: uint64(len(log.events) + 1), Kind: kind, JID: jid, Time: when})
	}
	for _, j := range []string{"held-1", "held-2", "held-3", "survivor", "early"} {
		add(fakewa.EventConnected, j, at(-time.Minute))
	}
	add(fakewa.EventDisconnected, "early", at(-time.Second)) // dropped before the kill
	before := []string{"held-1", "held-2", "held-3", "survivor"}
	steps := []struct {
		name          string
		events        []fakewa.Event
		dropped, back int
		last          time.Duration // from the kill; -1: none yet
	}{
		{"before the kill is seen", nil, 0, 0, -1},
		{"the killed replica's devices go offline", []fakewa.Event{
			{Kind: fakewa.EventDisconnected, JID: "held-1", Time: at(5 * time.Millisecond)},
			{Kind: fakewa.EventDisconnected, JID: "held-2", Time: at(6 * time.Millisecond)},
			{Kind: fakewa.EventDisconnected, JID: "held-3", Time: at(7 * time.Millisecond)},
		}, 3, 0, -1},
		{"a survivor takes one", []fakewa.Event{{Kind: fakewa.EventConnected, JID: "held-2", Time: at(10 * time.Second)}}, 3, 1, 10 * time.Second},
		{"the one dropped before the kill comes back: not the replica's", []fakewa.Event{{Kind: fakewa.EventConnected, JID: "early", Time: at(11 * time.Second)}}, 3, 1, 10 * time.Second},
		{"one is logged out by its user meanwhile: not waited for", []fakewa.Event{{Kind: fakewa.EventLoggedOut, JID: "held-3", Time: at(11 * time.Second)}}, 2, 1, 10 * time.Second},
		{"the last one is taken", []fakewa.Event{{Kind: fakewa.EventConnected, JID: "held-1", Time: at(12 * time.Second)}}, 2, 2, 12 * time.Second},
		{"a taken device drops again: waited for again", []fakewa.Event{{Kind: fakewa.EventDisconnected, JID: "held-2", Time: at(13 * time.Second)}}, 2, 1, 12 * time.Second},
		{"and comes back", []fakewa.Event{{Kind: fakewa.EventConnected, JID: "held-2", Time: at(14 * time.Second)}}, 2, 2, 14 * time.Second},
	}
	for _, s := range steps {
		for _, e := range s.events {
			add(e.Kind, e.JID, e.Time)
		}
		if err := p.poll(ctx); err != nil {
			t.Fatal(err)
		}
		dropped, back, last := p.TakenOver(before, kill)
		wantLast := time.Time{}
		if s.last >= 0 {
			wantLast = at(s.last)
		}
		if dropped != s.dropped || back != s.back || !last.Equal(wantLast) {
			t.Errorf("%s: dropped %d, back %d, last %v; want %d, %d, %v", s.name, dropped, back, last, s.dropped, s.back, wantLast)
		}
	}
}
