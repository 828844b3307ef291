package whatsapp

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
	waLog "go.mau.fi/whatsmeow/util/log"

	"wagate/gateway/internal/pgtest"
	"wagate/gateway/session"
	"wagate/gateway/storage"
	"wagate/simulator/fakewa"
)

// whatsmeowStore is whatsmeow's sqlstore on db, as the driver opens it.
func whatsmeowStore(tb testing.TB, db *storage.DB) *sqlstore.Container {
	tb.Helper()
	c := sqlstore.NewWithDB(db.SQL, string(db.Dialect), waLog.Noop)
	if err := c.Upgrade(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return c
}

// pairedDevice stores a new device with the JID pairing gives it (whatsmeow's PutDevice at
// pairing), so its prekey store is the device's.
func pairedDevice(tb testing.TB, c *sqlstore.Container, n int) *store.Device {
	tb.Helper()
	dev := c.NewDevice()
	jid := types.NewADJID(fmt.Sprintf("1555%07d", n), 0, 7)
	dev.ID = &jid
	dev.Account = &waAdv.ADVSignedDeviceIdentity{Details: []byte{1}, AccountSignature: make([]byte, 64),
		AccountSignatureKey: make([]byte, 32), DeviceSignature: make([]byte, 64)} // what the phone signs at pairing
	if err := c.PutDevice(context.Background(), dev); err != nil {
		tb.Fatal(err)
	}
	return dev
}

// storesOnBothDialects runs fn on a SQLite store and (unless -short) a PostgreSQL one.
func storesOnBothDialects(t *testing.T, fn func(t *testing.T, db *storage.DB)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, openStore(t)) })
	t.Run("postgres", func(t *testing.T) {
		if testing.Short() {
			t.Skip("starts PostgreSQL")
		}
		db, err := storage.Open(context.Background(), storage.Options{DSN: pgtest.Start(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		fn(t, db)
	})
}

// inOneTransaction is dev's prekey store as batchPreKeys wraps it.
func inOneTransaction(dev *store.Device) *txnPreKeyStore {
	return &txnPreKeyStore{PreKeyStore: dev.PreKeys, txns: dev.EventBuffer}
}

// insertPreKey stores a prekey with id for dev as whatsmeow's sqlstore does (uploaded).
func insertPreKey(tb testing.TB, db *storage.DB, dev *store.Device, id uint32) {
	tb.Helper()
	q := "INSERT INTO whatsmeow_pre_keys (jid, key_id, key, uploaded) VALUES (?, ?, ?, true)"
	if db.Dialect == storage.Postgres {
		q = "INSERT INTO whatsmeow_pre_keys (jid, key_id, key, uploaded) VALUES ($1, $2, $3, true)"
	}
	k := keys.NewPreKey(id)
	if _, err := db.SQL.ExecContext(context.Background(), q, dev.ID.String(), id, k.Priv[:]); err != nil {
		tb.Fatal(err)
	}
}

// whatsmeow's GetOrGenPreKeys run in one transaction makes the keys whatsmeow makes alone (the ids
// after the highest the device has, stored so that GetPreKey returns the same private key, none
// beyond), and a batch that fails leaves no key behind: whatsmeow alone keeps the ones it
// inserted before the failure (here the key id CHECK of its schema, < 2^24, stops a batch
// started 9 ids below it).
func TestWhatsmeowsPreKeysAreMadeInOneTransaction(t *testing.T) {
	storesOnBothDialects(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		c := whatsmeowStore(t, db)
		const idLimit = 1 << 24 // whatsmeow_pre_keys CHECK (key_id < 16777216)
		for i, tc := range []struct {
			name        string
			highest     uint32 // the highest key id the device has (uploaded), 0 for none
			count       uint32
			wantErr     bool
			wantHighest uint32 // after the batch
		}{
			{name: "a device just paired: its first login's 50", highest: 0, count: 50, wantHighest: 50},
			{name: "a device that has uploaded 40: the next 50", highest: 40, count: 50, wantHighest: 90},
			{name: "the initial upload's 812", highest: 0, count: 812, wantHighest: 812},
			{name: "a batch that fails at its 10th key leaves none", highest: idLimit - 10, count: 50, wantErr: true,
				wantHighest: idLimit - 10},
		} {
			t.Run(tc.name, func(t *testing.T) {
				dev := pairedDevice(t, c, i)
				if tc.highest > 0 {
					insertPreKey(t, db, dev, tc.highest)
				}
				got, err := inOneTransaction(dev).GetOrGenPreKeys(ctx, tc.count)
				if (err != nil) != tc.wantErr {
					t.Fatalf("GetOrGenPreKeys: %v, want an error: %v", err, tc.wantErr)
				}
				if !tc.wantErr {
					if len(got) != int(tc.count) {
						t.Fatalf("%d keys, want %d", len(got), tc.count)
					}
					for i, k := range got {
						if k.KeyID != tc.highest+1+uint32(i) {
							t.Fatalf("key %d has id %d, want %d", i, k.KeyID, tc.highest+1+uint32(i))
						}
						stored, err := dev.PreKeys.GetPreKey(ctx, k.KeyID)
						if err != nil || stored == nil || !bytes.Equal(stored.Priv[:], k.Priv[:]) || *stored.Pub != *k.Pub {
							t.Fatalf("key %d as stored: %v %v", k.KeyID, stored, err)
						}
					}
				}
				for _, id := range []uint32{tc.wantHighest + 1, tc.highest + 1} {
					if id == tc.highest+1 && !tc.wantErr {
						continue
					}
					if k, err := dev.PreKeys.GetPreKey(ctx, id); err != nil || k != nil {
						t.Fatalf("prekey %d exists after the batch: %v %v", id, k, err)
					}
				}
				// The login's next call finds the batch and makes nothing new.
				if !tc.wantErr {
					again, err := inOneTransaction(dev).GetOrGenPreKeys(ctx, tc.count)
					if err != nil || len(again) != len(got) || again[len(again)-1].KeyID != tc.wantHighest {
						t.Fatalf("the next call: %d keys, %v", len(again), err)
					}
				}
			})
		}
	})
}

// A retry receipt's fresh prekey (GenOnePreKey) made while a batch is being made gets an id of
// its own: it waits for the batch's commit instead of reading the highest id before it.
func TestAPreKeyMadeDuringABatchGetsAnIdOfItsOwn(t *testing.T) {
	storesOnBothDialects(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		c := whatsmeowStore(t, db)
		for round := range 5 {
			dev := pairedDevice(t, c, round)
			s := inOneTransaction(dev)
			var wg sync.WaitGroup
			errs := make(chan error, 11)
			ids := make(chan uint32, 60)
			wg.Go(func() {
				got, err := s.GetOrGenPreKeys(ctx, 50)
				errs <- err
				for _, k := range got {
					ids <- k.KeyID
				}
			})
			for range 10 {
				wg.Go(func() {
					k, err := s.GenOnePreKey(ctx)
					errs <- err
					if err == nil {
						ids <- k.KeyID
					}
				})
			}
			wg.Wait()
			close(errs)
			close(ids)
			for err := range errs {
				if err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
			}
			seen := map[uint32]bool{}
			for id := range ids {
				if seen[id] {
					t.Fatalf("round %d: id %d given twice", round, id)
				}
				seen[id] = true
			}
			if len(seen) != 60 {
				t.Fatalf("round %d: %d distinct ids, want 60", round, len(seen))
			}
		}
	})
}

// A device paired on the real whatsmeow client against fakewa ends its first login with exactly the
// 50 prekeys whatsmeow uploads (ids 1-50, all marked uploaded, none beyond), and a customer's first
// message, a Signal prekey message built on one of the uploaded prekeys, decrypts and is handed over.
func TestAPairedDevicesFirstLoginUploadsItsPreKeysAndAPreKeyMessageDecrypts(t *testing.T) {
	ctx := context.Background()
	wa, db, drv := driverOnFakewa(t, slog.New(slog.DiscardHandler), fakewa.Config{})
	var link linkEvents
	got := &handoffs{taken: map[string]int{}}
	var handedOver atomic.Int32
	take := takesEverything(got)
	c := connect(t, drv, "prekeys", "", func(ev session.DriverEvent) error {
		if _, ok := ev.(session.MessageReceived); ok {
			handedOver.Add(1)
			return take(ev)
		}
		return link.record(ev)
	})
	jid := pairDevice(t, wa, c, &link, "15550001818")
	if _, ok := c.cli.Store.PreKeys.(*txnPreKeyStore); !ok {
		t.Fatalf("the paired device's prekey store is a %T, not made in one transaction", c.cli.Store.PreKeys)
	}

	dev, err := whatsmeowStore(t, db).GetDevice(ctx, *c.cli.Store.ID)
	if err != nil || dev == nil {
		t.Fatalf("the paired device in the store: %v %v", dev, err)
	}
	waitUntil(t, "the first login's prekey upload", func() bool {
		n, err := dev.PreKeys.UploadedPreKeyCount(ctx)
		return err == nil && n >= whatsmeow.WantedPreKeyCount
	})
	if n, err := dev.PreKeys.UploadedPreKeyCount(ctx); err != nil || n != whatsmeow.WantedPreKeyCount {
		t.Fatalf("uploaded prekeys: %d %v, want %d", n, err, whatsmeow.WantedPreKeyCount)
	}
	for id := uint32(1); id <= whatsmeow.WantedPreKeyCount; id++ {
		if k, err := dev.PreKeys.GetPreKey(ctx, id); err != nil || k == nil {
			t.Fatalf("prekey %d: %v %v", id, k, err)
		}
	}
	if k, err := dev.PreKeys.GetPreKey(ctx, whatsmeow.WantedPreKeyCount+1); err != nil || k != nil {
		t.Fatalf("a prekey beyond the upload exists: %v %v", k, err)
	}

	id := customerWrites(t, wa, jid, "first words")
	waitReceipt(t, wa, id)
	waitUntil(t, "the message handed over", func() bool { return got.count("first words") == 1 })
	if handedOver.Load() != 1 {
		t.Fatalf("handed over %d messages, want 1", handedOver.Load())
	}
}

// BenchmarkFirstLoginPreKeyStoreWork is the store work of a paired device's first login for its
// prekeys: "whatsmeow-alone" what the login did before (GetOrGenPreKeys making 50 keys, one
// autocommitted INSERT each), "one-transaction" what it does now (the same call in one
// transaction, txnPreKeyStore), "made-ahead-then-login" issue 18's first proposal (the 50 keys made
// in one transaction before the login, then the login's GetOrGenPreKeys reading them back, which
// derives each key's public key again). cpu-us/op is the process's CPU time (getrusage) per op,
// the reading on a loaded machine; ns/op is wall time. Each op is a fresh paired device (stored
// outside the timer, its CPU included in cpu-us/op: the same in every way). -short leaves
// PostgreSQL out.
func BenchmarkFirstLoginPreKeyStoreWork(b *testing.B) {
	ctx := context.Background()
	dialects := []struct {
		name string
		open func(b *testing.B) *storage.DB
	}{
		{"sqlite", func(b *testing.B) *storage.DB {
			db, err := storage.Open(ctx, storage.Options{DataDir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			return db
		}},
		{"postgres", func(b *testing.B) *storage.DB {
			if testing.Short() {
				b.Skip("starts PostgreSQL")
			}
			db, err := storage.Open(ctx, storage.Options{DSN: pgtest.Start(b)})
			if err != nil {
				b.Fatal(err)
			}
			return db
		}},
	}
	ways := []struct {
		name  string
		login func(dev *store.Device) error
	}{
		{"whatsmeow-alone", func(dev *store.Device) error {
			_, err := dev.PreKeys.GetOrGenPreKeys(ctx, whatsmeow.WantedPreKeyCount)
			return err
		}},
		{"one-transaction", func(dev *store.Device) error {
			_, err := inOneTransaction(dev).GetOrGenPreKeys(ctx, whatsmeow.WantedPreKeyCount)
			return err
		}},
		{"made-ahead-then-login", func(dev *store.Device) error {
			if _, err := inOneTransaction(dev).GetOrGenPreKeys(ctx, whatsmeow.WantedPreKeyCount); err != nil {
				return err
			}
			_, err := dev.PreKeys.GetOrGenPreKeys(ctx, whatsmeow.WantedPreKeyCount)
			return err
		}},
	}
	for _, d := range dialects {
		b.Run(d.name, func(b *testing.B) {
			db := d.open(b)
			defer db.Close()
			c := whatsmeowStore(b, db)
			n := 0
			for _, w := range ways {
				b.Run(w.name, func(b *testing.B) {
					b.ReportAllocs()
					cpu0 := processCPU(b)
					for i := 0; i < b.N; i++ {
						b.StopTimer()
						n++
						dev := pairedDevice(b, c, n)
						b.StartTimer()
						if err := w.login(dev); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(b.N), "cpu-us/op")
				})
			}
		})
	}
}

// processCPU is the process's user and system CPU time so far.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
