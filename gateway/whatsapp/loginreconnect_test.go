package whatsapp

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types/events"

	"wagate/gateway/session"
	"wagate/simulator/fakewa"
)

// A connection the session closed must never dial again when WhatsApp's 515 (the login
// reconnect after pairing) is handled after the close: whatsmeow's own handling reconnected
// unconditionally, and the stale client then logged in over the session's newer connection
// (chaos seed 1 schedule 170). The test connects a client to fakewa (it shows QR codes),
// closes it, then hands it the event whatsmeow dispatches for a 515 with
// DisableLoginAutoReconnect set; a client still open does reconnect on it.
func TestALoginReconnectAfterDisconnectNeverDials(t *testing.T) {
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	_, _, drv := driverOnFakewa(t, quiet, fakewa.Config{})

	for _, tc := range []struct {
		name          string
		disconnect    bool
		wantConnected bool
	}{
		{name: "closed by the session: no dial", disconnect: true, wantConnected: false},
		{name: "still open: logs in again", disconnect: false, wantConnected: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var qrs atomic.Int32
			sc, err := drv.Open(ctx, "s-"+tc.name, "", func(ev session.DriverEvent) error {
				if _, ok := ev.(session.QRCodes); ok {
					qrs.Add(1)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			c := sc.(*conn)
			t.Cleanup(c.Disconnect)
			if !c.cli.DisableLoginAutoReconnect {
				t.Fatal("whatsmeow's own 515 reconnect is on: it dials even after Disconnect")
			}
			if err := c.Connect(ctx); err != nil {
				t.Fatal(err)
			}
			waitUntil(t, "a QR code", func() bool { return qrs.Load() > 0 })
			if tc.disconnect {
				c.Disconnect()
			}
			before := qrs.Load()
			c.onEvent(&events.ManualLoginReconnect{})
			if tc.wantConnected {
				// A fresh connection of an unpaired client shows QR codes again.
				waitUntil(t, "the reconnected client's QR code", func() bool { return qrs.Load() > before && c.cli.IsConnected() })
				return
			}
			time.Sleep(time.Second) // what a dial would take on loopback, many times over
			if c.cli.IsConnected() || qrs.Load() != before {
				t.Fatalf("a closed connection dialled again after the 515 (connected %v, QR events %d -> %d)",
					c.cli.IsConnected(), before, qrs.Load())
			}
		})
	}
}
