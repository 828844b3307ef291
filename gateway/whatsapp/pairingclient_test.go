package whatsapp

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"wagate/simulator/fakewa"
)

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
	wa, db, drv := driverOnFakewa(t, quiet, fakewa.Config{
		StreamErrorCloseDelay: 20 * time.Second}) // a replaced stream's socket stays open: c1 reads on

	got := &handoffs{taken: map[string]int{}}

	// c1, the pairing client: takes the first message, holds A and then refuses it (the session
	// replaced its connection meanwhile), refuses everything after.
	h1 := newFirstClient(got)
	c1 := connect(t, drv, "s1", "", h1.handle)
	jid := pairDevice(t, wa, c1, &h1.link, "5511933330031")

	// A first message, taken and acknowledged, moves the customer's Signal session from pkmsg to
	// msg, as in the schedule ("failed to decrypt normal message").
	first := customerWrites(t, wa, jid, "first")
	waitReceipt(t, wa, first)
	idA := customerWrites(t, wa, jid, "A")
	waitClosed(t, h1.hasA, "A reaching the pairing client's handler")
	idB := customerWrites(t, wa, jid, "B")
	waitDelivered(t, wa, idB, "the pairing client")
	time.Sleep(200 * time.Millisecond) // read off the socket, queued behind A

	// c2, the session's next client of the device: holds A (found decrypted in the device's
	// buffer) and refuses it, takes B.
	h2 := newNextClient(got)
	c2 := connect(t, drv, "s1", jid.String(), h2.handle)
	waitClosed(t, h2.hasA, "WhatsApp's redelivery of A reaching the next client's handler")
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
	close(h2.release)                 // c2 refuses A, looks B up and waits for the lock
	time.Sleep(time.Second)           // c2's busy handler now retries every 100 ms
	close(h1.release)                 // c1's loop goes on to B: looks it up, waits too
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
	waitUntil(t, "c1 done with B", func() bool { return h1.sawB.Load() || receiptFrom(c1Conn) })

	// A was refused by both: WhatsApp delivers it to the session's next client.
	c1.Disconnect()
	c2.Disconnect()
	connect(t, drv, "s1", jid.String(), takesEverything(got))
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
