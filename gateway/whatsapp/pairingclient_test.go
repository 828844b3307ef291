package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"

	"wagate/gateway/session"
	"wagate/gateway/storage"
	"wagate/gateway/wadial"
	"wagate/simulator/fakewa"
)

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

// Chaos seed 1 schedule 31 lost a customer's message: the session's device had been paired on
// the client that then logged in and received its first messages, and whatsmeow's store gives a
// device its event buffer at pairing, so that client decrypted outside the device's gate. Its
// connection went away while its handler was busy with one message and another waited behind
// it; WhatsApp delivered both again to the session's next client. The old client's loop went on
// to the waiting message and decrypted it while the next client decrypted the redelivered copy:
// both missed the event buffer, the next client's decryption failed with "old counter" and
// whatsmeow acknowledged that copy as a duplicate, and the old client's handler refused its copy
// (the session had replaced that connection). Acknowledged, never delivered.
//
// Here a device is paired on a fresh client (c1) and a customer writes A, which c1's handler
// holds, then B, which waits behind it. The next client (c2) logs in (WhatsApp replaces c1's
// stream; c1's socket stays open for the test, so its loop goes on to B for sure, where after a
// drop whatsmeow picks B or the socket's end at random) and gets A and B again. The database's
// write lock, held by the test, stretches the decryptions: c2 looks B up and waits to decrypt
// it, then c1 looks B up while c2 waits, and c1 is let through first. Every customer's message
// must be taken exactly once by some client, none acknowledged without being taken.
func TestAMessageThePairingClientStillHoldsIsDeliveredOnceByTheNextClient(t *testing.T) {
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})) // whatsmeow's "old counter" shows here
	wa, err := fakewa.New(fakewa.Config{RootKey: fakewa.GenerateRootKey(), Logger: quiet,
		StreamErrorCloseDelay: 20 * time.Second}) // a replaced stream's socket stays open: c1 reads on
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

	got := &handoffs{taken: map[string]int{}}
	c1HasA, releaseC1 := make(chan struct{}), make(chan struct{})
	c2HasA, releaseC2 := make(chan struct{}), make(chan struct{})
	var once1, once2 sync.Once
	var mu sync.Mutex
	var qr string
	c1Connected, c1SawB := false, false

	// c1, the pairing client: takes the first message, holds A and then refuses it (the session
	// replaced its connection meanwhile), refuses everything after.
	sc1, err := drv.Open(ctx, "s1", "", func(ev session.DriverEvent) error {
		switch e := ev.(type) {
		case session.QRCodes:
			mu.Lock()
			if qr == "" {
				qr = e.Codes[0]
			}
			mu.Unlock()
		case session.Connected:
			mu.Lock()
			c1Connected = true
			mu.Unlock()
		case session.MessageReceived:
			switch e.Message.Text {
			case "first":
				got.take("first")
				return nil
			case "A":
				once1.Do(func() { close(c1HasA) })
				<-releaseC1
			case "B":
				mu.Lock()
				c1SawB = true
				mu.Unlock()
			}
			return errRefusedByTest
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	c1 := sc1.(*conn)
	t.Cleanup(c1.Disconnect)
	if err := c1.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a QR code", func() bool { mu.Lock(); defer mu.Unlock(); return qr != "" })
	mu.Lock()
	code := qr
	mu.Unlock()
	jid, err := wa.Pair(ctx, code, "5511933330031")
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the paired device logged in on its pairing client", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return c1Connected && c1.LoggedIn()
	})

	// A first message, taken and acknowledged, moves the customer's Signal session from pkmsg to
	// msg, as in the schedule ("failed to decrypt normal message").
	first := customerWrites(t, wa, jid, "first")
	waitReceipt(t, wa, first)
	idA := customerWrites(t, wa, jid, "A")
	select {
	case <-c1HasA:
	case <-time.After(30 * time.Second):
		t.Fatal("A never reached the pairing client's handler")
	}
	idB := customerWrites(t, wa, jid, "B")
	if _, err := waitEvent(wa, func(e fakewa.Event) bool {
		return e.Kind == fakewa.EventPhoneMessageDelivered && e.MessageID == idB
	}); err != nil {
		t.Fatalf("B was not delivered to the pairing client: %v", err)
	}
	time.Sleep(200 * time.Millisecond) // read off the socket, queued behind A

	// c2, the session's next client of the device: holds A (found decrypted in the device's
	// buffer) and refuses it, takes B.
	sc2, err := drv.Open(ctx, "s1", jid.String(), func(ev session.DriverEvent) error {
		if e, ok := ev.(session.MessageReceived); ok {
			switch e.Message.Text {
			case "A":
				once2.Do(func() { close(c2HasA) })
				<-releaseC2
				return errRefusedByTest
			default:
				got.take(e.Message.Text)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	c2 := sc2.(*conn)
	t.Cleanup(c2.Disconnect)
	if err := c2.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c2HasA:
	case <-time.After(30 * time.Second):
		t.Fatal("WhatsApp's redelivery of A never reached the next client's handler")
	}
	for _, e := range wa.EventsSince(0) {
		if e.Kind == fakewa.EventPhoneMessageDelivered && e.MessageID == idB && e.Enc != "msg" {
			t.Fatalf("B was delivered as %q, want msg (the schedule's shape)", e.Enc)
		}
	}

	// The write lock: a decryption looks its ciphertext up, then waits to begin its transaction.
	lock, err := db.SQL.BeginTx(ctx, nil) // BEGIN IMMEDIATE (storage's SQLite _txlock)
	if err != nil {
		t.Fatal(err)
	}
	close(releaseC2)                  // c2 refuses A, looks B up and waits for the lock
	time.Sleep(time.Second)           // c2's busy handler now retries every 100 ms
	close(releaseC1)                  // c1's loop goes on to B: looks it up, waits too
	time.Sleep(20 * time.Millisecond) // c1's first retries come every few ms
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}

	c1Conn, c2Conn := deliveredOn(t, wa, idB, 1), deliveredOn(t, wa, idB, 2)
	receiptFrom := func(conn uint64) bool {
		for _, e := range wa.EventsSince(0) {
			if e.Kind == fakewa.EventDeviceReceipt && e.MessageID == idB && e.Conn == conn && e.Detail != "retry" {
				return true
			}
		}
		return false
	}
	waitUntil(t, "c2's receipt of B", func() bool { return receiptFrom(c2Conn) })
	if n := got.count("B"); n != 1 {
		t.Fatalf("B was acknowledged to WhatsApp and taken %d times, want once (acknowledged without being taken: lost)", n)
	}
	// c1 ends with B too: refused by its handler, or acknowledged as already processed. (Closing
	// a client while it writes a receipt is a data race inside whatsmeow.)
	waitUntil(t, "c1 done with B", func() bool { mu.Lock(); defer mu.Unlock(); return c1SawB || receiptFrom(c1Conn) })

	// A was refused by both: WhatsApp delivers it to the session's next client.
	c1.Disconnect()
	c2.Disconnect()
	sc3, err := drv.Open(ctx, "s1", jid.String(), func(ev session.DriverEvent) error {
		if e, ok := ev.(session.MessageReceived); ok {
			got.take(e.Message.Text)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	c3 := sc3.(*conn)
	t.Cleanup(c3.Disconnect)
	if err := c3.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	waitReceipt(t, wa, idA)
	for _, text := range []string{"first", "A", "B"} {
		if n := got.count(text); n != 1 {
			t.Errorf("%s taken %d times, want once", text, n)
		}
	}
}

// deliveredOn returns the connection fakewa delivered message id to the attempt-th time.
func deliveredOn(t *testing.T, wa *fakewa.Server, id string, attempt int) uint64 {
	t.Helper()
	for _, e := range wa.EventsSince(0) {
		if e.Kind == fakewa.EventPhoneMessageDelivered && e.MessageID == id && e.Attempt == attempt {
			return e.Conn
		}
	}
	t.Fatalf("fakewa never delivered %s a %d. time", id, attempt)
	return 0
}

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
