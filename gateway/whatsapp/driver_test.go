package whatsapp_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"

	"wagate/gateway/delivery"
	"wagate/gateway/internal/pgtest"
	"wagate/gateway/laravel"
	"wagate/gateway/session"
	"wagate/gateway/session/sessiontest"
	"wagate/gateway/storage"
	"wagate/gateway/whatsapp"
	"wagate/simulator/fakewa"
	"wagate/simulator/fakewa/fakewatest"
)

// rootKey is shared by every fakewa server of this test process: whatsmeow trusts one root.
var rootKey = sync.OnceValue(fakewa.GenerateRootKey)

type world struct {
	t     *testing.T
	wa    *fakewa.Server
	db    *storage.DB
	reg   *storage.Registry
	drv   *whatsapp.Driver
	sink  *sessiontest.Sink
	m     *session.Manager
	dir   string
	dsn   string // Postgres when set, else SQLite in dir
	quiet *slog.Logger
	// messaging makes the manager's delivery take message and receipt events.
	messaging bool
}

func newWorld(t *testing.T) *world { return newWorldOn(t, "") }

func newWorldOn(t *testing.T, dsn string) *world {
	return newWorldWith(t, dsn, false, fakewa.ReceiptsNone)
}

// newWorldWith starts fakewa with the receipt policy and a manager whose delivery takes message
// and receipt events when messaging is set.
func newWorldWith(t *testing.T, dsn string, messaging bool, receipts fakewa.ReceiptPolicy) *world {
	t.Helper()
	w := &world{dsn: dsn, t: t, dir: t.TempDir(), sink: &sessiontest.Sink{}, messaging: messaging, quiet: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: testLogLevel()}))}
	// A generous close delay after stream errors lets a loaded (race-detector) client handle the
	// 515 before the socket closes; PairLoginTimeout covers the case where it still does not.
	// whatsmeow's socket has unsynchronised fields (FrameSocket.conn, OnDisconnect) that race
	// when a receipt ack is written while the server drops the socket: lifecycle tests that drop
	// sockets take no receipts (ReceiptsNone).
	w.wa = fakewatest.Start(t, fakewa.Config{RootKey: rootKey(), Logger: w.quiet, StreamErrorCloseDelay: time.Second,
		Receipts: receipts})
	w.boot()
	return w
}

// boot opens the database and starts a session manager on it, as the gateway process does.
func (w *world) boot() {
	t := w.t
	ctx := context.Background()
	db, err := storage.Open(ctx, storage.Options{DataDir: w.dir, DSN: w.dsn})
	if err != nil {
		t.Fatal(err)
	}
	w.db = db
	w.reg = storage.NewRegistry(db, w.quiet)
	w.drv, err = whatsapp.New(ctx, whatsapp.Config{DB: db, Logger: w.quiet, Debug: os.Getenv("WAGATE_TEST_WADEBUG") != "",
		Dial: fakewatest.Dial(w.wa)})
	if err != nil {
		t.Fatal(err)
	}
	var sink delivery.Delivery = w.sink
	if w.messaging {
		sink = messagingSink{w.sink}
	}
	w.m, err = session.New(ctx, session.Config{Logger: w.quiet, PairLoginTimeout: 5 * time.Second}, w.drv, w.reg, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.m.Restore(ctx); err != nil {
		t.Fatal(err)
	}
}

func (w *world) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.m.Close(ctx); err != nil {
		w.t.Error(err)
	}
	w.drv.Close()
	_ = w.reg.Close(ctx)
	_ = w.db.Close()
}

// waitFor polls cond until it holds or 15 s pass.
func (w *world) waitFor(what string, cond func() bool) {
	w.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			counts, live := w.m.Counts()
			w.t.Fatalf("timed out waiting for %s (statuses %v, live %d)", what, counts, live)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (w *world) status(id string) session.Info {
	info, err := w.m.Get(context.Background(), id)
	if err != nil {
		w.t.Fatal(err)
	}
	return info
}

func (w *world) statuses(id string) []string {
	var out []string
	for _, e := range w.sink.Of(id) {
		if len(e) > 7 && e[:7] == "status:" {
			out = append(out, e[7:])
		}
	}
	return out
}

// pair starts a session and lets a fake phone scan its QR code.
func (w *world) pair(id, phone string) types.JID {
	w.t.Helper()
	ctx := context.Background()
	if _, err := w.m.Start(ctx, id); err != nil {
		w.t.Fatal(err)
	}
	w.waitFor("a QR code", func() bool { return w.status(id).QR != "" })
	jid, err := w.wa.Pair(ctx, w.status(id).QR, phone)
	if err != nil {
		w.t.Fatal(err)
	}
	w.waitFor("connected", func() bool {
		info := w.status(id)
		return info.Status == laravel.StatusConnected && info.Connected
	})
	return jid
}

func TestWhatsmeowSessionLifecycleAgainstFakewa(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	jid := w.pair("s1", "15550000001")

	msgID, err := w.m.SendText(ctx, "s1", session.OutgoingText{Phone: "15550009999", Text: "hello"})
	if err != nil || msgID == "" {
		t.Fatalf("send: id %q err %v", msgID, err)
	}

	if err := w.wa.Drop(jid); err != nil {
		t.Fatal(err)
	}
	w.waitFor("disconnected then connected", func() bool {
		return slices.Equal(w.statuses("s1"), []string{"pending", "connected", "disconnected", "connected"}) && w.status("s1").Connected
	})

	// Restart: the paired device reconnects by itself.
	w.shutdown()
	devs := w.wa.Devices()
	if len(devs) != 1 {
		t.Fatalf("fakewa has %d devices", len(devs))
	}
	w.boot()
	w.waitFor("reconnect after restart", func() bool { return w.status("s1").Connected })

	if err := w.wa.Replace(jid); err != nil {
		t.Fatal(err)
	}
	w.waitFor("disconnected after stream replaced", func() bool { return w.status("s1").Status == laravel.StatusDisconnected })
	time.Sleep(300 * time.Millisecond)
	if w.status("s1").Connected {
		t.Fatal("a replaced stream reconnected")
	}
	if _, err := w.m.Start(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	w.waitFor("connected again after an explicit start", func() bool { return w.status("s1").Connected })

	if _, err := w.m.Logout(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	if st := w.status("s1"); st.Status != laravel.StatusLoggedOut || st.Paired {
		t.Fatalf("after logout: %+v", st)
	}
	left, err := w.drv.Devices(ctx)
	if err != nil || len(left) != 0 {
		t.Fatalf("devices left in the store after logout: %v %v", left, err)
	}
	w.shutdown()
	for _, ev := range w.sink.Events() {
		if err := ev.Validate(); err != nil {
			t.Error(err)
		}
	}
}

func TestWhatsmeowStoreOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	w := newWorldOn(t, pgtest.Start(t))
	ctx := context.Background()
	jid := w.pair("pg1", "15550000011")
	w.pair("pg2", "15550000012")
	if _, err := w.m.SendText(ctx, "pg1", session.OutgoingText{Phone: "15550009999", Text: "hola"}); err != nil {
		t.Fatal(err)
	}
	if err := w.wa.Drop(jid); err != nil {
		t.Fatal(err)
	}
	w.waitFor("reconnect after a drop", func() bool {
		return len(w.statuses("pg1")) == 4 && w.status("pg1").Connected
	})
	w.shutdown()
	w.boot()
	w.waitFor("both sessions back after a restart", func() bool { return w.status("pg1").Connected && w.status("pg2").Connected })
	if _, err := w.m.Logout(ctx, "pg1"); err != nil {
		t.Fatal(err)
	}
	devs, err := w.drv.Devices(ctx)
	if err != nil || len(devs) != 1 {
		t.Fatalf("devices after logging one of two out: %v %v", devs, err)
	}
	w.shutdown()
}

func TestPhoneUnlinkReportsLoggedOut(t *testing.T) {
	w := newWorld(t)
	defer w.shutdown()
	jid := w.pair("s1", "15550000002")
	if err := w.wa.Logout(jid); err != nil {
		t.Fatal(err)
	}
	w.waitFor("logged_out", func() bool { return w.status("s1").Status == laravel.StatusLoggedOut })
	if w.status("s1").Paired {
		t.Fatal("still paired")
	}
}

// A gateway on SQLite must survive many concurrent pairings (peers fail with SQLITE_BUSY at 100).
func TestConcurrentPairingsOnSQLite(t *testing.T) {
	if testing.Short() {
		t.Skip("pairs many sessions")
	}
	w := newWorld(t)
	defer w.shutdown()
	n := 100
	if raceEnabled {
		n = 30
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("p%03d", i)
			ctx := context.Background()
			if _, err := w.m.Start(ctx, id); err != nil {
				errs <- err
				return
			}
			deadline := time.Now().Add(20 * time.Second)
			for w.status(id).QR == "" {
				if time.Now().After(deadline) {
					errs <- fmt.Errorf("%s: no QR", id)
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
			if _, err := w.wa.Pair(ctx, w.status(id).QR, fmt.Sprintf("1555100%04d", i)); err != nil {
				errs <- fmt.Errorf("%s: pair: %w", id, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if counts, live := w.m.Counts(); live == n && counts[laravel.StatusConnected] == n {
			break
		}
		if time.Now().After(deadline) {
			for i := range n {
				id := fmt.Sprintf("p%03d", i)
				if st := w.status(id); !st.Connected {
					t.Logf("%s: %+v events %q", id, st, w.sink.Of(id))
					for _, ev := range w.wa.Events() {
						if ev.Phone == fmt.Sprintf("1555100%04d", i) || (ev.JID != "" && len(ev.JID) > 11 && ev.JID[:11] == fmt.Sprintf("1555100%04d", i)) {
							t.Logf("  fakewa %+v", ev)
						}
					}
				}
			}
			t.Fatal("not all connected")
		}
		time.Sleep(20 * time.Millisecond)
	}
	counts, _ := w.m.Counts()
	if counts[laravel.StatusConnected] != n {
		t.Fatalf("statuses %v", counts)
	}
}

func testLogLevel() slog.Level {
	if os.Getenv("WAGATE_TEST_WADEBUG") != "" {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}
