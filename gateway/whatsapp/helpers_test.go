package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"

	"wagate/gateway/session"
	"wagate/gateway/storage"
	"wagate/simulator/fakewa"
	"wagate/simulator/fakewa/fakewatest"
)

// The real whatsmeow client on fakewa: what the package's tests set up.

// errRefusedByTest stands for the session refusing a message (a connection it replaced, an
// outbox that did not take it): whatsmeow then sends no receipt and WhatsApp delivers it again.
var errRefusedByTest = errors.New("refused by the test's session")

// handoffs counts, by text, the customer's messages a client's handler took (acknowledged to
// WhatsApp by whatsmeow once taken), across the clients of one device.
type handoffs struct {
	mu    sync.Mutex
	taken map[string]int
}

func (h *handoffs) take(text string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.taken[text]++
}

func (h *handoffs) count(text string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.taken[text]
}

// driverOnFakewa starts fakewa with cfg (a fresh root key unless cfg has one), a store in a
// temporary folder and a driver on it that dials fakewa; all are closed when the test ends.
func driverOnFakewa(t *testing.T, log *slog.Logger, cfg fakewa.Config) (*fakewa.Server, *storage.DB, *Driver) {
	t.Helper()
	cfg.Logger = log
	wa := fakewatest.Start(t, cfg)
	db := openStore(t)
	return wa, db, newDriver(t, db, log, wa)
}

// openStore opens a store (SQLite) in a temporary folder, closed when the test ends.
func openStore(t *testing.T) *storage.DB {
	t.Helper()
	db, err := storage.Open(context.Background(), storage.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// newDriver is a driver on db that dials wa, closed when the test ends.
func newDriver(t *testing.T, db *storage.DB, log *slog.Logger, wa *fakewa.Server) *Driver {
	t.Helper()
	drv, err := New(context.Background(), Config{DB: db, Logger: log, Dial: fakewatest.Dial(wa)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(drv.Close)
	return drv
}

// connect opens session sid on drv (its device jid, "" for a new one) with handle as the
// session's handler and connects it; it is disconnected when the test ends.
func connect(t *testing.T, drv *Driver, sid, jid string, handle func(session.DriverEvent) error) *conn {
	t.Helper()
	sc, err := drv.Open(context.Background(), sid, jid, handle)
	if err != nil {
		t.Fatal(err)
	}
	c := sc.(*conn)
	t.Cleanup(c.Disconnect)
	if err := c.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c
}

// linkEvents records what a connection told its session about its link: the first QR code it
// showed and how many times it connected and disconnected. record is (part of) a handler.
type linkEvents struct {
	mu                      sync.Mutex
	qr                      string
	connected, disconnected int
}

func (l *linkEvents) record(ev session.DriverEvent) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch e := ev.(type) {
	case session.QRCodes:
		if l.qr == "" {
			l.qr = e.Codes[0]
		}
	case session.Connected:
		l.connected++
	case session.Disconnected:
		l.disconnected++
	}
	return nil
}

func (l *linkEvents) firstQR() string { l.mu.Lock(); defer l.mu.Unlock(); return l.qr }

func (l *linkEvents) connections() int { l.mu.Lock(); defer l.mu.Unlock(); return l.connected }

func (l *linkEvents) disconnections() int { l.mu.Lock(); defer l.mu.Unlock(); return l.disconnected }

// pairDevice waits for the first QR code c showed (recorded in link), has phone scan it on wa and
// waits until the paired device logged in on c.
func pairDevice(t *testing.T, wa *fakewa.Server, c *conn, link *linkEvents, phone string) types.JID {
	t.Helper()
	waitUntil(t, "a QR code", func() bool { return link.firstQR() != "" })
	jid, err := wa.Pair(context.Background(), link.firstQR(), phone)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the paired device logged in", func() bool { return link.connections() > 0 && c.LoggedIn() })
	return jid
}

// The two clients of the handover tests (a device's messages A and B, A held by the first
// client's handler while B waits behind it, both delivered again to the next client).

// firstClient is the handler of the client a device is paired on: it takes the message "first",
// holds A until release is closed and then refuses it (the session replaced its connection
// meanwhile), refuses everything after and notes whether it saw B. What it was told about its
// link goes to link.
type firstClient struct {
	got           *handoffs
	link          linkEvents
	hasA, release chan struct{}
	once          sync.Once
	sawB          atomic.Bool
}

func newFirstClient(got *handoffs) *firstClient {
	return &firstClient{got: got, hasA: make(chan struct{}), release: make(chan struct{})}
}

func (f *firstClient) handle(ev session.DriverEvent) error {
	e, ok := ev.(session.MessageReceived)
	if !ok {
		return f.link.record(ev)
	}
	switch e.Message.Text {
	case "first":
		f.got.take("first")
		return nil
	case "A":
		f.once.Do(func() { close(f.hasA) })
		<-f.release
	case "B":
		f.sawB.Store(true)
	}
	return errRefusedByTest
}

// nextClient is the handler of the device's next client: it holds A (delivered again) until
// release is closed and then refuses it, and takes every other message.
type nextClient struct {
	got           *handoffs
	hasA, release chan struct{}
	once          sync.Once
	link          linkEvents
}

func newNextClient(got *handoffs) *nextClient {
	return &nextClient{got: got, hasA: make(chan struct{}), release: make(chan struct{})}
}

func (n *nextClient) handle(ev session.DriverEvent) error {
	if e, ok := ev.(session.MessageReceived); ok {
		if e.Message.Text == "A" {
			n.once.Do(func() { close(n.hasA) })
			<-n.release
			return errRefusedByTest
		}
		n.got.take(e.Message.Text)
		return nil
	}
	return n.link.record(ev)
}

// waitPostLogin waits until a connection's client dispatched Connected (link counted it):
// whatsmeow sends its post-login requests (the prekey count, passive) before that, and a
// Disconnect while one is being written races inside whatsmeow (FrameSocket.Close against
// SendFrame: a data race -race reports, CI at ac28212).
func waitPostLogin(t *testing.T, link *linkEvents, who string) {
	t.Helper()
	waitUntil(t, who+"'s client connected (whatsmeow's post-login requests sent)", func() bool { return link.connections() > 0 })
}

// takesEverything is a session's handler that takes every message into got.
func takesEverything(got *handoffs) func(session.DriverEvent) error {
	return func(ev session.DriverEvent) error {
		if e, ok := ev.(session.MessageReceived); ok {
			got.take(e.Message.Text)
		}
		return nil
	}
}

// waitClosed waits (up to 30 s) until ch is closed: a handler reached what the test waits for.
func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s never happened", what)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// customerWrites has a customer write text to the device jid and returns the message's id.
func customerWrites(t *testing.T, wa *fakewa.Server, to types.JID, text string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := wa.SendMessage(ctx, to, fakewa.PhoneMessage{From: "5511977770031", Text: text})
	if err != nil {
		t.Fatalf("the customer writes %q: %v", text, err)
	}
	return id
}

// waitDelivered waits until fakewa delivered message id to the device (to names the client).
func waitDelivered(t *testing.T, wa *fakewa.Server, id, to string) {
	t.Helper()
	if _, err := waitEvent(wa, func(e fakewa.Event) bool {
		return e.Kind == fakewa.EventPhoneMessageDelivered && e.MessageID == id
	}); err != nil {
		t.Fatalf("%s was not delivered to %s: %v", id, to, err)
	}
}

// waitReceipt waits for the device's receipt of message id (not a retry receipt).
func waitReceipt(t *testing.T, wa *fakewa.Server, id string) {
	t.Helper()
	if _, err := waitEvent(wa, func(e fakewa.Event) bool {
		return e.Kind == fakewa.EventDeviceReceipt && e.MessageID == id && e.Detail != "retry"
	}); err != nil {
		t.Fatalf("no receipt from the device for %s: %v", id, err)
	}
}

func waitEvent(wa *fakewa.Server, match func(fakewa.Event) bool) (fakewa.Event, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := wa.WaitEvent(ctx, match)
	if err != nil {
		return e, fmt.Errorf("fakewa event: %w", err)
	}
	return e, nil
}
