package whatsapp

import (
	"log/slog"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types/events"

	"wagate/simulator/fakewa"
)

// A connection is dead when no keepalive was answered for longer than whatsmeow's own threshold
// for reconnecting (KeepAliveMaxFailTime); before that whatsmeow keeps pinging.
func TestAConnectionIsDeadOnlyAfterKeepalivesFailedForKeepAliveMaxFailTime(t *testing.T) {
	now := time.Date(2026, 12, 6, 23, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name         string
		lastAnswered time.Duration // before now
		dead         bool
	}{
		{"the first failure after an answer 25 s ago", 25 * time.Second, false},
		{"failing for a minute", time.Minute, false},
		{"failing for exactly the limit", whatsmeow.KeepAliveMaxFailTime, false},
		{"failing for longer than the limit", whatsmeow.KeepAliveMaxFailTime + time.Second, true},
		{"never answered for an hour", time.Hour, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := &events.KeepAliveTimeout{ErrorCount: 3, LastSuccess: now.Add(-c.lastAnswered)}
			if got := keepaliveDead(e, now); got != c.dead {
				t.Fatalf("dead = %v, want %v", got, c.dead)
			}
		})
	}
}

// whatsmeow's auto-reconnect is off (the session layer reconnects with a new client), and with it
// off whatsmeow only reports failing keepalives: a connection whose peer went silent stayed
// connected for good. On a real client paired and logged in on fakewa, a keepalive timeout
// within the limit changes nothing; one past it closes the socket (fakewa sees the connection
// end) and tells the session Disconnected, once, so that it connects a new client.
func TestAConnectionWhoseKeepalivesFailPastTheLimitIsDroppedAndReported(t *testing.T) {
	wa, _, drv := driverOnFakewa(t, slog.New(slog.DiscardHandler), fakewa.Config{})

	link := &linkEvents{}
	c := connect(t, drv, "s1", "", link.record)
	jid := pairDevice(t, wa, c, link, "5511922230001")
	told := link.disconnections
	ended := func() bool {
		for _, e := range wa.EventsFor(jid) {
			if e.Kind == fakewa.EventDisconnected {
				return true
			}
		}
		return false
	}

	// whatsmeow dispatches KeepAliveTimeout on a goroutine of its own, as here.
	c.onEvent(&events.KeepAliveTimeout{ErrorCount: 2, LastSuccess: time.Now().Add(-time.Minute)})
	if !c.LoggedIn() || told() != 0 || ended() {
		t.Fatalf("a minute of failing keepalives dropped the connection (logged in %v, told %d, fakewa saw it end %v)", c.LoggedIn(), told(), ended())
	}
	c.onEvent(&events.KeepAliveTimeout{ErrorCount: 8, LastSuccess: time.Now().Add(-whatsmeow.KeepAliveMaxFailTime - time.Second)})
	if told() != 1 {
		t.Fatalf("the session was told of %d disconnections, want 1", told())
	}
	if c.LoggedIn() || c.cli.IsConnected() {
		t.Fatalf("a dead connection still up: logged in %v, socket connected %v", c.LoggedIn(), c.cli.IsConnected())
	}
	waitUntil(t, "fakewa to see the connection end", ended)
}
