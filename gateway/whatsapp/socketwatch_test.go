package whatsapp

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"wagate/gateway/session"
	"wagate/simulator/fakewa"
)

// A connect whose socket WhatsApp closes during the noise handshake returns at the close with
// errClosedInHandshake (whatsmeow alone would return after its 20 s NoiseHandshakeResponseTimeout),
// and closing the connection then does not wait for whatsmeow's connect, which holds the client's
// socket lock until that timeout; once whatsmeow's connect ends, the abandoned client is closed.
// A device paired on fakewa, then a new connection for it while fakewa cuts every handshake.
func TestAConnectWhoseSocketClosesInTheHandshakeReturnsAtTheCloseAndDisconnectDoesNotWait(t *testing.T) {
	wa, _, drv := driverOnFakewa(t, slog.New(slog.DiscardHandler), fakewa.Config{})
	link := &linkEvents{}
	first := connect(t, drv, "s1", "", link.record)
	jid := pairDevice(t, wa, first, link, "5511922220002")
	first.Disconnect()

	if err := wa.CutHandshakes(time.Minute); err != nil {
		t.Fatal(err)
	}
	sc, err := drv.Open(context.Background(), "s1", jid.String(), func(session.DriverEvent) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	c := sc.(*conn)
	start := time.Now()
	err = c.Connect(context.Background())
	if took := time.Since(start); !errors.Is(err, errClosedInHandshake) || took > 5*time.Second {
		t.Fatalf("Connect = %v after %v, want errClosedInHandshake at the socket's close", err, took)
	}
	start = time.Now()
	c.Disconnect()
	c.Release()
	if took := time.Since(start); took > time.Second {
		t.Fatalf("Disconnect took %v: it waited for whatsmeow's abandoned connect", took)
	}
	if testing.Short() {
		return
	}
	// whatsmeow's connect ends at its own timeout (20 s); the client is then closed, and
	// nothing of it connects.
	deadline := time.Now().Add(40 * time.Second)
	for {
		c.dialMu.Lock()
		abandoned := c.abandoned
		c.dialMu.Unlock()
		if !abandoned {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("whatsmeow's abandoned connect never ended")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if c.cli.IsConnected() || c.LoggedIn() {
		t.Fatal("the abandoned client is connected")
	}
}
