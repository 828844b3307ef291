package whatsapp

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"

	"wagate/gateway/storage"
)

// bufferedDecrypt is what whatsmeow's Client.bufferedDecrypt (message.go) does with a device's
// event buffer, the caller the gate serves: the plaintext of a ciphertext seen before, else a
// decryption whose plaintext is stored in the same transaction (decrypt gets the transaction's
// context, as libsignal's session writes do).
func bufferedDecrypt(ctx context.Context, buf store.EventBuffer, ciphertext []byte, decrypt func(context.Context) ([]byte, error)) ([]byte, error) {
	hash := sha256.Sum256(ciphertext)
	ev, err := buf.GetBufferedEvent(ctx, hash)
	if err != nil {
		return nil, err
	}
	if ev != nil {
		return ev.Plaintext, nil
	}
	var plaintext []byte
	err = buf.DoDecryptionTxn(ctx, func(ctx context.Context) error {
		pt, err := decrypt(ctx)
		if err != nil {
			return err
		}
		plaintext = pt
		return buf.PutBufferedEvent(ctx, hash, pt, time.Now())
	})
	return plaintext, err
}

// errOldCounter is what libsignal answers for a message whose ratchet step was used already.
var errOldCounter = errors.New("received message with old counter")

// Chaos seed 1 schedule 199: WhatsApp delivered a customer's message again on the session's new
// connection while the old connection's copy still waited in whatsmeow's queue; both copies
// were decrypted at once (two handler loops, one per connection), both missed the event buffer,
// the second decryption failed with "old counter" and whatsmeow acknowledged that copy as a
// duplicate, while the first copy's handler had failed: the message was lost. Two clients of
// one device (as the session's reconnect makes) decrypt one ciphertext at once here: each must
// get the plaintext, the ratchet stepping once.
func TestTwoCopiesOfAMessageDecryptedAtOnceBothGetThePlaintext(t *testing.T) {
	ctx := context.Background()
	db, err := storage.Open(ctx, storage.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	drv, err := New(ctx, Config{DB: db, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(drv.Close)
	jid := types.NewADJID("5500000001", 0, 1)
	dev := drv.container.NewDevice()
	dev.ID = &jid
	dev.Account = &waAdv.ADVSignedDeviceIdentity{Details: []byte{1}, AccountSignature: make([]byte, 64), AccountSignatureKey: make([]byte, 32), DeviceSignature: make([]byte, 64)}
	if err := dev.Save(ctx); err != nil {
		t.Fatal(err)
	}
	// Two clients of the device, each with its own store object, as Open gives them.
	var bufs []store.EventBuffer
	for range 2 {
		d, err := drv.container.GetDevice(ctx, jid)
		if err != nil || d == nil {
			t.Fatalf("device: %v, %v", d, err)
		}
		bufs = append(bufs, drv.gates.wrap(jid.String(), d.EventBuffer, nil, nil))
	}

	var steps atomic.Int32
	firstIn := make(chan struct{})
	decrypt := func(context.Context) ([]byte, error) {
		if steps.Add(1) > 1 {
			return nil, errOldCounter
		}
		close(firstIn)
		time.Sleep(100 * time.Millisecond) // the ratchet steps while the other copy arrives
		return []byte("hello"), nil
	}
	ciphertext := []byte("pkmsg 64FA2E3ACFE134E3521F30347DF202F8")
	results := make([]error, 2)
	plaintexts := make([][]byte, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == 1 {
				<-firstIn // the second copy comes while the first is being decrypted
			}
			plaintexts[i], results[i] = bufferedDecrypt(ctx, bufs[i], ciphertext, decrypt)
		}()
	}
	wg.Wait()
	for i := range 2 {
		if results[i] != nil || string(plaintexts[i]) != "hello" {
			t.Errorf("copy %d: plaintext %q, err %v; want the plaintext (an old-counter failure is acknowledged as a duplicate and the message is lost)", i+1, plaintexts[i], results[i])
		}
	}
	if n := steps.Load(); n != 1 {
		t.Errorf("decrypted %d times; want once", n)
	}
}
