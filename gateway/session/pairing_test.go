package session_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"wagate/gateway/laravel"
	"wagate/gateway/session"
	"wagate/gateway/storage"
)

const scannedDevice = "155500009999.0:1@s.whatsapp.net"

// When a phone scans, the client asks the session before it confirms (PairRequested). The session
// accepts only on its current connection, while its replica holds it and is not closing, and then
// the registry has the device before the client confirms; otherwise it refuses, the client answers
// WhatsApp with an error and the phone shows the linking failed.
func TestAScanIsAcceptedOnlyOnTheCurrentConnectionOfAHeldSession(t *testing.T) {
	cases := []struct {
		name string
		// before runs after s1 showed its QR code, before the scan.
		before func(t *testing.T, r *rig, owner *fakeOwner)
		accept bool
	}{
		{name: "the session's current connection, its shard held", before: func(*testing.T, *rig, *fakeOwner) {}, accept: true},
		{name: "its shard lost or being handed over", before: func(_ *testing.T, _ *rig, owner *fakeOwner) { owner.lose("s1") }, accept: false},
		{name: "the session dropped (its shard handed over)", before: func(t *testing.T, r *rig, _ *fakeOwner) {
			if _, err := r.m.Drop(context.Background(), func(id string) bool { return id == "s1" }, true); err != nil {
				t.Fatal(err)
			}
		}, accept: false},
		{name: "a connection the session replaced", before: func(t *testing.T, r *rig, _ *fakeOwner) {
			if _, err := r.m.Stop(context.Background(), "s1"); err != nil {
				t.Fatal(err)
			}
			r.start("s1")
		}, accept: false},
		{name: "the gateway shut down", before: func(t *testing.T, r *rig, _ *fakeOwner) {
			if err := r.m.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
		}, accept: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r, owner := clusterRigHolding(t, "s1")
				scanned := r.driver.Conn("s1") // the connection whose QR code the phone scans
				tc.before(t, r, owner)

				err := scanned.Emit(session.PairRequested{DeviceID: scannedDevice})
				rec, _ := r.store.Record("s1")
				if !tc.accept {
					if !errors.Is(err, session.ErrPairingRefused) {
						t.Fatalf("scan answered %v, want ErrPairingRefused", err)
					}
					if rec.DeviceJID != "" {
						t.Fatalf("a refused scan recorded device %q", rec.DeviceJID)
					}
					return
				}
				if err != nil {
					t.Fatalf("scan refused: %v", err)
				}
				if rec.DeviceJID != scannedDevice {
					t.Fatalf("accepted scan: the registry has device %q before the client confirms, want %q", rec.DeviceJID, scannedDevice)
				}
				_ = scanned.Emit(session.PairSuccess{DeviceID: scannedDevice}) // the client confirmed
			})
		})
	}
}

// A handover (Drop with flush) does not close a connection whose scan the session accepted
// before the outcome arrived: closed in between, the client could confirm a device the session
// would never hear of. It waits, and the outcome is the session's.
func TestClusterAHandoverWaitsForTheOutcomeOfAnAcceptedScan(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, _ := clusterRigHolding(t, "s1")
		c := r.driver.Conn("s1")
		if err := c.Emit(session.PairRequested{DeviceID: scannedDevice}); err != nil {
			t.Fatal(err)
		}
		dropped := make(chan error, 1)
		go func() {
			_, err := r.m.Drop(context.Background(), func(id string) bool { return id == "s1" }, true)
			dropped <- err
		}()
		time.Sleep(time.Second)
		synctest.Wait()
		select {
		case err := <-dropped:
			t.Fatalf("the handover finished (err %v) before the accepted scan's outcome", err)
		default:
		}
		if c.Released() {
			t.Fatal("the connection of an accepted scan was closed before its outcome")
		}
		_ = c.Emit(session.PairSuccess{DeviceID: scannedDevice})
		if err := <-dropped; err != nil {
			t.Fatal(err)
		}
		if !c.Released() {
			t.Fatal("the handover did not close the connection after the outcome")
		}
		if rec, _ := r.store.Record("s1"); rec.DeviceJID != scannedDevice {
			t.Fatalf("the next holder reads device %q, want %q", rec.DeviceJID, scannedDevice)
		}
	})
}

// A pairing that fails after the session accepted it (the client could not store or confirm the
// device) is not half kept: the device is forgotten and the QR flow ends expired (the phone saw
// the linking fail; a start shows new codes).
func TestAnAcceptedScanThatFailsForgetsTheDeviceAndExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, session.Config{})
		defer r.close()
		r.start("s1")
		c := r.driver.Conn("s1")
		if err := c.Emit(session.PairRequested{DeviceID: scannedDevice}); err != nil {
			t.Fatal(err)
		}
		_ = c.Emit(session.PairFailed{Reason: "failed to send pairing confirmation"})
		synctest.Wait()
		info := r.info("s1")
		if info.Paired || info.Status != laravel.StatusExpired {
			t.Fatalf("after a failed pairing: paired=%v status %s, want unpaired and expired", info.Paired, info.Status)
		}
		if rec, _ := r.store.Record("s1"); rec.DeviceJID != "" {
			t.Fatalf("the registry keeps device %q of a failed pairing", rec.DeviceJID)
		}
		if !c.Released() {
			t.Fatal("the failed pairing's connection was kept")
		}
	})
}

// A restored record that names a device the store does not have is reported by what it was: a
// session that never logged in (pending: a scan accepted and recorded, then the process died
// before the client stored it) expired; one that had been connected was logged out.
func TestARestoredSessionWhoseDeviceIsGoneReportsWhatItWas(t *testing.T) {
	cases := []struct {
		recorded laravel.Status
		want     laravel.Status
	}{
		{laravel.StatusPending, laravel.StatusExpired},
		{laravel.StatusConnected, laravel.StatusLoggedOut},
		{laravel.StatusDisconnected, laravel.StatusLoggedOut},
	}
	for _, tc := range cases {
		t.Run(string(tc.recorded), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRig(t, session.Config{})
				r.store.Put(storage.Record{SessionID: "s1", DeviceJID: scannedDevice, Status: tc.recorded})
				if err := r.m.Restore(context.Background()); err != nil {
					t.Fatal(err)
				}
				synctest.Wait()
				defer r.close()
				if got := r.info("s1").Status; got != tc.want {
					t.Fatalf("restored %s record without its device: %s, want %s", tc.recorded, got, tc.want)
				}
			})
		})
	}
}
