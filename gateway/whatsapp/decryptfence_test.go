package whatsapp

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"

	"wagate/gateway/internal/pgtest"
	"wagate/gateway/storage"
)

// The cluster's SIGSTOP process test (gateway/cluster/processtest), once in CI at e05c978: the
// replica holding a session was stopped inside whatsmeow's decryption transaction of a
// customer's message, the device's Signal session row locked, past its lease. The session's new
// holder decrypted WhatsApp's redelivery of the message behind that lock; the paused replica,
// resumed, committed its decryption (and, fenced, handed the plaintext to nobody), so the new
// holder's failed on the event buffer's duplicate plaintext row: whatsmeow sent a retry receipt,
// the customer's phone encrypted the message again and it reached Laravel after the 30 newer
// ones. Two replicas (each its own pool and driver) share one Postgres store here: the paused
// one's decryption, whose lease lapsed before it could commit, must be rolled back, and the new
// holder's must give the plaintext.
func TestAReplicaPausedInADecryptionPastItsLeaseLeavesTheMessageToTheNewHolder(t *testing.T) {
	dsn := pgtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	jid := types.NewADJID("5500000002", 0, 1)
	type replica struct {
		buf      store.EventBuffer
		sessions store.SessionStore
	}
	var pausedHolds atomic.Bool
	pausedHolds.Store(true)
	open := func(holds func() bool) replica {
		db, err := storage.Open(ctx, storage.Options{DSN: dsn})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		drv, err := New(ctx, Config{DB: db, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(drv.Close)
		dev, err := drv.container.GetDevice(ctx, jid)
		if err != nil {
			t.Fatal(err)
		}
		if dev == nil { // the first replica pairs the device
			dev = drv.container.NewDevice()
			dev.ID = &jid
			dev.Account = &waAdv.ADVSignedDeviceIdentity{Details: []byte{1}, AccountSignature: make([]byte, 64), AccountSignatureKey: make([]byte, 32), DeviceSignature: make([]byte, 64)}
			if err := dev.Save(ctx); err != nil {
				t.Fatal(err)
			}
		}
		return replica{buf: drv.gates.wrap(jid.String(), dev.EventBuffer, nil, holds), sessions: dev.Sessions}
	}
	paused := open(pausedHolds.Load)
	holder := open(nil)

	const customer = "5511988800000.0:0"
	ciphertext := []byte("msg 58E6BE974F06150AF46F49A1D1BDB0BC")
	// decrypt steps the customer's Signal session (the row write libsignal makes in the
	// transaction), reports that it did and returns the plaintext once cont is closed.
	decrypt := func(ratchet string, stepped, cont chan struct{}) func(context.Context) ([]byte, error) {
		return func(ctx context.Context) ([]byte, error) {
			if err := paused.sessions.PutSession(ctx, customer, []byte(ratchet)); err != nil {
				return nil, err
			}
			close(stepped)
			<-cont
			return []byte("hello"), nil
		}
	}
	type result struct {
		plaintext []byte
		err       error
	}
	pausedIn, resume, pausedDone := make(chan struct{}), make(chan struct{}), make(chan result, 1)
	go func() {
		pt, err := bufferedDecrypt(ctx, paused.buf, ciphertext, decrypt("stepped by the paused replica", pausedIn, resume))
		pausedDone <- result{pt, err}
	}()
	<-pausedIn // SIGSTOP: the paused replica's transaction holds the session row
	pausedHolds.Store(false)

	holderLookedUp, holderDone := make(chan struct{}), make(chan result, 1)
	go func() {
		// The new holder's decryption writes the same row: it waits for the paused replica's
		// transaction to end.
		pt, err := bufferedDecrypt(ctx, holder.buf, ciphertext, func(ctx context.Context) ([]byte, error) {
			close(holderLookedUp) // its look-up missed: the paused replica committed nothing
			if err := holder.sessions.PutSession(ctx, customer, []byte("stepped by the new holder")); err != nil {
				return nil, err
			}
			return []byte("hello"), nil
		})
		holderDone <- result{pt, err}
	}()
	<-holderLookedUp
	close(resume) // SIGCONT

	p, h := <-pausedDone, <-holderDone
	if !errors.Is(p.err, context.Canceled) {
		t.Errorf("the paused replica's decryption: plaintext %q, err %v; want it rolled back with an error wrapping context.Canceled (whatsmeow then sends neither a receipt nor a retry receipt)", p.plaintext, p.err)
	}
	if h.err != nil || string(h.plaintext) != "hello" {
		t.Errorf("the new holder's decryption: plaintext %q, err %v; want the plaintext (a failure sends a retry receipt: the message comes again after newer ones)", h.plaintext, h.err)
	}
	if ev, err := holder.buf.GetBufferedEvent(ctx, sha256.Sum256(ciphertext)); err != nil || ev == nil || string(ev.Plaintext) != "hello" {
		t.Errorf("buffered plaintext: %+v, %v; want the new holder's", ev, err)
	}
	if s, err := holder.sessions.GetSession(ctx, customer); err != nil || string(s) != "stepped by the new holder" {
		t.Errorf("the customer's Signal session: %q, %v; want the new holder's step only", s, err)
	}
}
