package whatsapp

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
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

// The cluster's SIGSTOP process test (gateway/cluster/processtest), once in CI at e05c978 and
// once in 10 runs here: the replica holding a session was stopped inside whatsmeow's decryption
// transaction of a customer's message, the device's Signal session row locked, past its lease.
// The session's new holder decrypted WhatsApp's redelivery of the message behind that lock; the
// paused replica, resumed, committed its decryption (and, fenced, handed the plaintext to
// nobody), so the new holder's failed on the event buffer's duplicate plaintext row: whatsmeow
// sent a retry receipt, the customer's phone encrypted the message again and it reached Laravel
// after the newer ones. Two replicas (each its own pool and driver) share one Postgres store
// here, and the paused one's lease lapses during its pause: its decryption must be rolled back
// with an error wrapping context.Canceled (whatsmeow then sends neither a receipt nor a retry
// receipt), and the new holder's must give the plaintext, its ratchet step the one kept.
func TestAReplicaPausedInADecryptionPastItsLeaseLeavesTheMessageToTheNewHolder(t *testing.T) {
	dsn := pgtest.Start(t)
	for i, c := range []struct {
		name string
		// lockedInPause: the pause lands after the paused replica wrote the customer's Signal
		// session (the new holder's decryption waits for its transaction); otherwise before, and
		// the new holder commits first (the paused one's plaintext is then the duplicate).
		lockedInPause bool
	}{
		{"paused holding the Signal session row", true},
		{"paused before writing it", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			jid := types.NewADJID(fmt.Sprintf("550000000%d", i), 0, 1)
			var pausedHolds atomic.Bool
			pausedHolds.Store(true)
			paused := openReplicaOfDevice(ctx, t, dsn, jid, pausedHolds.Load)
			holder := openReplicaOfDevice(ctx, t, dsn, jid, nil)

			const customer = "5511988800000.0:0"
			ciphertext := []byte("msg 58E6BE974F06150AF46F49A1D1BDB0BC")
			type result struct {
				plaintext []byte
				err       error
			}
			pausedIn, resume, pausedDone := make(chan struct{}), make(chan struct{}), make(chan result, 1)
			go func() {
				pt, err := bufferedDecrypt(ctx, paused.buf, ciphertext, func(ctx context.Context) ([]byte, error) {
					if !c.lockedInPause {
						close(pausedIn)
						<-resume
					}
					if err := paused.sessions.PutSession(ctx, customer, []byte("stepped by the paused replica")); err != nil {
						return nil, err
					}
					if c.lockedInPause {
						close(pausedIn)
						<-resume
					}
					return []byte("hello"), nil
				})
				pausedDone <- result{pt, err}
			}()
			<-pausedIn // SIGSTOP
			pausedHolds.Store(false)

			holderIn, holderDone := make(chan struct{}), make(chan result, 1)
			go func() {
				pt, err := bufferedDecrypt(ctx, holder.buf, ciphertext, func(ctx context.Context) ([]byte, error) {
					close(holderIn) // its look-up missed: the paused replica committed nothing
					if err := holder.sessions.PutSession(ctx, customer, []byte("stepped by the new holder")); err != nil {
						return nil, err
					}
					return []byte("hello"), nil
				})
				holderDone <- result{pt, err}
			}()
			<-holderIn
			var h result
			if !c.lockedInPause {
				h = <-holderDone
			}
			close(resume) // SIGCONT
			p := <-pausedDone
			if c.lockedInPause {
				h = <-holderDone
			}

			if !errors.Is(p.err, context.Canceled) {
				t.Errorf("the paused replica's decryption: plaintext %q, err %v; want it rolled back with an error wrapping context.Canceled (else a receipt or a retry receipt)", p.plaintext, p.err)
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
		})
	}
}

// replicaOfDevice is one replica's view of a device in the shared store: its event buffer,
// behind its own driver's gate, and its Signal sessions.
type replicaOfDevice struct {
	buf      store.EventBuffer
	sessions store.SessionStore
}

// openReplicaOfDevice opens the store at dsn as a replica does (its own pool and driver) and
// returns its view of device jid, saving the device first when no replica has; holds is the
// replica's Config.Holds for the device's session (nil: always).
func openReplicaOfDevice(ctx context.Context, t *testing.T, dsn string, jid types.JID, holds func() bool) replicaOfDevice {
	t.Helper()
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
	if dev == nil {
		dev = drv.container.NewDevice()
		dev.ID = &jid
		dev.Account = &waAdv.ADVSignedDeviceIdentity{Details: []byte{1}, AccountSignature: make([]byte, 64), AccountSignatureKey: make([]byte, 32), DeviceSignature: make([]byte, 64)}
		if err := dev.Save(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return replicaOfDevice{buf: drv.gates.wrap(jid.String(), dev.EventBuffer, nil, holds), sessions: dev.Sessions}
}
