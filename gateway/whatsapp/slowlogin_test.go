package whatsapp

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"

	"wagate/gateway/event"
	"wagate/gateway/laravel"
	"wagate/gateway/session"
	"wagate/gateway/storage"
	"wagate/simulator/fakewa"
)

// Issue 18: under CPU starvation whatsmeow took 8-12 s and more over a freshly paired device's
// <success> (its store writes, the prekey generation and upload, before Connected), and the
// session's login watch, PairLoginTimeout after the pairing, reconnected devices that were in the
// middle of that login: 258 in one run, each one more handshake and login for a process already
// behind. The watch now waits for a login WhatsApp accepted (session.LoginProgress) and still
// reconnects a device from which nothing arrived. Real whatsmeow and session.Manager on fakewa,
// PairLoginTimeout 1 s, the login after the pairing's 515 held 3 s:
//   - slow but progressing: the device's prekey store answers after 3 s (a starved store), after
//     WhatsApp's <success>; the session waits, no second connection, one login at WhatsApp;
//   - silent: WhatsApp leaves the device's logins unanswered for 3 s (a device silence): the watch
//     reconnects it at its timeout, as before.
func TestTheLoginWatchWaitsForASlowLoginAndReconnectsASilentOne(t *testing.T) {
	if testing.Short() {
		t.Skip("real pairings and logins held for seconds")
	}
	const hold = 3 * time.Second
	for _, tc := range []struct {
		name          string
		slowStore     bool // the prekey store answers after hold: the login is under way
		silence       bool // WhatsApp answers none of the device's logins for hold
		wantReconnect bool
	}{
		{name: "slow store after <success>: waited for", slowStore: true, wantReconnect: false},
		{name: "no <success>: reconnected", silence: true, wantReconnect: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			quiet := slog.New(slog.DiscardHandler)
			wa, db, drv := driverOnFakewa(t, quiet, fakewa.Config{})
			td := &heldLoginDriver{Driver: drv, wa: wa, hold: hold, slowStore: tc.slowStore, silence: tc.silence}
			reg := storage.NewRegistry(db, quiet)
			m, err := session.New(ctx, session.Config{Logger: quiet, PairLoginTimeout: time.Second}, td, reg, nopDelivery{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				_ = m.Close(cctx)
				_ = reg.Close(cctx)
			})
			const id = "held-login"
			if _, err := m.Start(ctx, id); err != nil {
				t.Fatal(err)
			}
			var qr string
			waitUntil(t, "a QR code", func() bool {
				info, err := m.Get(ctx, id)
				qr = info.QR
				return err == nil && qr != ""
			})
			jid, err := wa.Pair(ctx, qr, "15550000002")
			if err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(30 * time.Second)
			for {
				info, err := m.Get(ctx, id)
				if err == nil && info.Connected && info.Status == laravel.StatusConnected {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("not connected 30 s after the scan: %+v, %v", info, err)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if !td.held.Load() {
				t.Fatalf("the login after the pairing was not held (%v): the test did not play what it means to", td.silenceErr.Load())
			}
			logins := 0
			for _, e := range wa.EventsFor(jid) {
				if e.Kind == fakewa.EventConnected {
					logins++
				}
			}
			opens := td.opens.Load()
			t.Logf("connections opened %d, logins at WhatsApp %d", opens, logins)
			if reconnected := opens > 1; reconnected != tc.wantReconnect {
				t.Fatalf("the device was reconnected: %v (%d connections), want %v", reconnected, opens, tc.wantReconnect)
			}
			if !tc.wantReconnect && logins != 1 {
				t.Fatalf("WhatsApp saw %d logins of the device, want the one after the 515", logins)
			}
		})
	}
}

// heldLoginDriver is the driver with the login after a pairing's 515 held for hold: as it dials,
// the device's prekey store is made slow (slowStore) or WhatsApp stops answering the device's
// logins (silence). It counts the connections opened.
type heldLoginDriver struct {
	*Driver
	wa                 *fakewa.Server
	hold               time.Duration
	slowStore, silence bool
	opens              atomic.Int32
	held               atomic.Bool
	silenceErr         atomic.Value // fakewa's refusal of the silence
}

func (d *heldLoginDriver) Open(ctx context.Context, sessionID, deviceID string, handle func(session.DriverEvent) error) (session.Conn, error) {
	d.opens.Add(1)
	sc, err := d.Driver.Open(ctx, sessionID, deviceID, handle)
	if err != nil {
		return nil, err
	}
	c := sc.(*conn)
	c.beforeLogin = func() { d.holdLogin(c) }
	return sc, nil
}

// holdLogin runs as c's login after the pairing's 515 is about to dial: the device is paired
// (pairing's PutDevice gave it its store) and WhatsApp knows it.
func (d *heldLoginDriver) holdLogin(c *conn) {
	if d.slowStore {
		// whatsmeow asks the prekey store for its uploaded count right after <success>, before
		// Connected.
		c.cli.Store.PreKeys = &slowPreKeyStore{PreKeyStore: c.cli.Store.PreKeys, until: time.Now().Add(d.hold)}
		d.held.Store(true)
	}
	if d.silence {
		if _, err := d.wa.Silence([]types.JID{*c.cli.Store.ID}, d.hold); err != nil {
			d.silenceErr.Store(err.Error())
			return
		}
		d.held.Store(true)
	}
}

// slowPreKeyStore is a prekey store that answers its first count only at until, as a store on a
// starved machine does.
type slowPreKeyStore struct {
	store.PreKeyStore
	until time.Time
}

func (s *slowPreKeyStore) UploadedPreKeyCount(ctx context.Context) (int, error) {
	time.Sleep(time.Until(s.until))
	return s.PreKeyStore.UploadedPreKeyCount(ctx)
}

// nopDelivery accepts every event.
type nopDelivery struct{}

func (nopDelivery) Deliver(context.Context, event.Event) error { return nil }
func (nopDelivery) Close(context.Context) error                { return nil }
