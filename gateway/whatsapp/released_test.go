package whatsapp_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"wagate/gateway/session"
	"wagate/simulator/fakewa"
)

// A message whatsmeow decrypted on a connection the session has already released (a handover
// or a redelivery drop: Disconnect, then Release, while the message was being decrypted) must
// not be acknowledged to WhatsApp. whatsmeow takes a dispatch to no handler for handled: it sent
// the receipt and cleared the message's buffered plaintext in the device store, so WhatsApp's
// redelivery to the session's next connection was dropped as already processed and the message
// never reached the session (cluster-failover at 500 users: 3 customers' messages acknowledged
// and never in Laravel, each logged "Node handling took 9 s ... Failed to send receipt:
// websocket not connected" on the replica that handed the session over). The test releases a
// live connection, has the customer write, and then starts the session again: the message must
// not be acknowledged by the released connection and must reach the session once it is back.
func TestAMessageArrivingOnAReleasedConnectionIsNotAcknowledgedAndComesBack(t *testing.T) {
	w := newWorldWith(t, "", true, fakewa.ReceiptsNone)
	defer w.shutdown()
	jid := w.pair("s1", "15550000103")
	ctx := context.Background()
	if _, err := w.m.Stop(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	w.waitFor("fakewa sees the device offline", func() bool { return deviceState(w, jid.String()) == fakewa.DeviceOffline })

	// The connection as the session held it before its handover: open and logged in.
	var mu sync.Mutex
	var seen []session.DriverEvent
	c, err := w.drv.Open(ctx, "s1", jid.String(), func(ev session.DriverEvent) error {
		mu.Lock()
		seen = append(seen, ev)
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	w.waitFor("the connection logged in", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) > 0 && deviceState(w, jid.String()) == fakewa.DeviceOnline
	})
	c.Release() // the session let go of it; the socket is still open
	mu.Lock()
	before := len(seen)
	mu.Unlock()

	id := w.phoneWrites(jid.String(), fakewa.PhoneMessage{Text: "¿siguen abiertos?"})
	time.Sleep(2 * time.Second) // decrypt and dispatch take milliseconds on loopback
	for _, e := range w.wa.EventsSince(0) {
		if e.Kind == fakewa.EventDeviceReceipt && e.MessageID == id && e.Detail != "retry" {
			t.Fatalf("the released connection acknowledged %s to WhatsApp (receipt %q)", id, e.Detail)
		}
	}
	mu.Lock()
	if len(seen) > before {
		t.Errorf("the released connection still handed events to its handler: %#v", seen[before:])
	}
	mu.Unlock()
	c.Disconnect()

	if _, err := w.m.Start(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	w.waitFor("the message on the session's next connection", func() bool {
		for _, ev := range w.messagingEvents("s1") {
			if ev.Message != nil && ev.Message.MessageID == id {
				return true
			}
		}
		return false
	})
	w.waitDeviceReceipts(id)
}

func deviceState(w *world, jid string) fakewa.DeviceState {
	for _, d := range w.wa.Devices() {
		if d.JID == jid {
			return d.State
		}
	}
	return ""
}
