package whatsapp

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"go.mau.fi/whatsmeow/types/events"

	"wagate/gateway/session"
	"wagate/gateway/storage"
	"wagate/gateway/wadial"
	"wagate/simulator/fakewa"
)

// After a drop whatsmeow reconnects at once, and dispatches the drop's Disconnected on a
// goroutine of its own: on a busy machine the new socket's Connected can be handled first. The
// late Disconnected must not mark the connection down: the session checks LoggedIn right after
// it to restore connected, and a cleared flag left a connected session reporting disconnected
// until its next event. The test pairs a device on fakewa (real whatsmeow client, logged in),
// then hands the connection the Disconnected whatsmeow dispatches for the socket it replaced.
func TestADisconnectedHandledAfterTheReconnectLeavesTheConnectionLoggedIn(t *testing.T) {
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	wa, err := fakewa.New(fakewa.Config{RootKey: fakewa.GenerateRootKey(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := wa.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = wa.Close() })
	db, err := storage.Open(ctx, storage.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	drv, err := New(ctx, Config{DB: db, Logger: quiet, Dial: &wadial.Config{Addr: wa.Addr(), RootPubKey: wa.RootPublicKey()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(drv.Close)

	var mu sync.Mutex
	var qr string
	var connected, disconnected int
	sc, err := drv.Open(ctx, "s1", "", func(ev session.DriverEvent) error {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case session.QRCodes:
			if qr == "" {
				qr = e.Codes[0]
			}
		case session.Connected:
			connected++
		case session.Disconnected:
			disconnected++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	c := sc.(*conn)
	t.Cleanup(c.Disconnect)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	code := func() string { mu.Lock(); defer mu.Unlock(); return qr }
	waitUntil(t, "a QR code", func() bool { return code() != "" })
	if _, err := wa.Pair(ctx, code(), "5511922220001"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the paired device logged in", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return connected > 0 && c.LoggedIn()
	})

	c.onEvent(&events.Disconnected{}) // the replaced socket's, dispatched late
	mu.Lock()
	told := disconnected
	mu.Unlock()
	if told != 1 {
		t.Fatalf("the session was told of %d disconnections, want 1", told)
	}
	if !c.LoggedIn() {
		t.Fatal("a Disconnected of a socket already replaced marked the logged-in connection down")
	}
}
