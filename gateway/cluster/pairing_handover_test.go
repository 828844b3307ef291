package cluster_test

// A session mid-pairing (QR shown, unpaired) when its shard moves: the gateway's final state must
// agree with what the phone believes. Real parts: fakewa (the WhatsApp protocol, the phone that
// scans), the real whatsmeow client (gateway/whatsapp), PostgreSQL for the registry and
// whatsmeow's device store shared by both replicas, redis-server for the shard leases and epochs
// (cluster.Store), and two session managers playing the old and the new holder, handing the shard
// over the way gateway/app does (mark moving, Drop with flush, Release; or Close and Leave at a
// SIGTERM) and taking it the way it does (Claim inside Adopt).
//
// cluster-failover at 1500 users (issue 16) ended with 3 sessions the gateway and Laravel showed
// expired while the phone had linked them: their replica was stopped by the rolling restart while
// they showed a QR code, the phone scanned it while the replica was closing its connections, the
// client confirmed the pairing (WhatsApp linked the device, whatsmeow stored it) and the session
// layer, which had already let go of the connection, ignored the PairSuccess; the registry never
// learned of the device and the restarted replica reported the QR flow expired.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"wagate/gateway/cluster"
	"wagate/gateway/internal/pgtest"
	"wagate/gateway/laravel"
	"wagate/gateway/session"
	"wagate/gateway/session/sessiontest"
	"wagate/gateway/storage"
	"wagate/gateway/whatsapp"
	"wagate/internal/redistest"
	"wagate/simulator/fakewa"
	"wagate/simulator/fakewa/fakewatest"
)

// pairWorld is what the replicas share.
type pairWorld struct {
	wa    *fakewa.Server
	db    *storage.DB
	store *cluster.Store
}

// pairReplica is one gateway replica: its cluster member, the session layer on the real driver,
// and what it emitted.
type pairReplica struct {
	member *cluster.Member
	owner  *memberOwner
	mgr    *session.Manager
	sink   *sessiontest.Sink
	hold   *pairHold
}

// memberOwner is session.Owner on a cluster.Member, as gateway/app's node is: a shard marked
// moving (being handed over) is not held.
type memberOwner struct {
	m      *cluster.Member
	shards int
	mu     sync.Mutex
	moving map[int]bool
}

func (o *memberOwner) Epoch(id string) (int, int64, bool) {
	k := cluster.Shard(id, o.shards)
	o.mu.Lock()
	moving := o.moving[k]
	o.mu.Unlock()
	if moving {
		return k, 0, false
	}
	e, ok := o.m.HeldEpoch(k)
	return k, e, ok
}

func (o *memberOwner) Bump(ctx context.Context, shard int, epoch int64) (int64, error) {
	return o.m.Bump(ctx, shard, epoch)
}

func (o *memberOwner) Fence(ctx context.Context, shard int, epoch int64) (bool, error) {
	return o.m.Fence(ctx, shard, epoch)
}

func (o *memberOwner) setMoving(k int, moving bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.moving[k] = moving
}

// pairHold is a log handler for a replica's whatsmeow clients that, once armed, holds the client
// that logs "Successfully paired" (whatsmeow: after it stored the device and confirmed the
// pairing to WhatsApp, before it dispatches PairSuccess) until release is closed or for at most
// holdFor: a scan confirmed just as the replica lets go of the session.
type pairHold struct {
	mu      sync.Mutex
	armed   bool
	reached chan struct{}
	release chan struct{}
}

const holdFor = time.Second

func newPairHold() *pairHold {
	return &pairHold{reached: make(chan struct{}), release: make(chan struct{})}
}

func (h *pairHold) arm() { h.mu.Lock(); h.armed = true; h.mu.Unlock() }

func (h *pairHold) Enabled(context.Context, slog.Level) bool { return true }
func (h *pairHold) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *pairHold) WithGroup(string) slog.Handler            { return h }
func (h *pairHold) Handle(_ context.Context, r slog.Record) error {
	if !strings.HasPrefix(r.Message, "Successfully paired") {
		return nil
	}
	h.mu.Lock()
	armed := h.armed
	h.armed = false
	h.mu.Unlock()
	if !armed {
		return nil
	}
	close(h.reached)
	select {
	case <-h.release:
	case <-time.After(holdFor):
	}
	return nil
}

func newPairWorld(t *testing.T) *pairWorld {
	t.Helper()
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	wa := fakewatest.Start(t, fakewa.Config{Logger: quiet})
	db, err := storage.Open(ctx, storage.Options{DSN: pgtest.Start(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	store, err := cluster.New(redistest.Real(t).Client(t), cluster.Options{Shards: 64, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.CheckShards(ctx); err != nil {
		t.Fatal(err)
	}
	return &pairWorld{wa: wa, db: db, store: store}
}

// replica joins the cluster as name and runs a session layer on the real whatsmeow driver.
func (w *pairWorld) replica(t *testing.T, name string) *pairReplica {
	t.Helper()
	ctx := context.Background()
	m, err := w.store.Join(ctx, name, "http://127.0.0.1:1", cluster.Callbacks{})
	if err != nil {
		t.Fatal(err)
	}
	rctx, stopRenewing := context.WithCancel(ctx)
	renewed := make(chan struct{})
	go func() { defer close(renewed); _ = m.Run(rctx) }()
	t.Cleanup(func() { stopRenewing(); <-renewed })

	hold := newPairHold()
	drv, err := whatsapp.New(ctx, whatsapp.Config{DB: w.db, Logger: slog.New(hold), Debug: true,
		Dial: fakewatest.Dial(w.wa)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(drv.Close)
	quiet := slog.New(slog.DiscardHandler)
	reg := storage.NewRegistry(w.db, quiet)
	t.Cleanup(func() { _ = reg.Close(context.Background()) })
	owner := &memberOwner{m: m, shards: w.store.Shards(), moving: map[int]bool{}}
	cfg := session.DefaultConfig()
	cfg.Owner = owner
	cfg.Logger = quiet
	cfg.ResyncRestored = true
	sink := &sessiontest.Sink{}
	mgr, err := session.New(ctx, cfg, drv, reg, sink)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = mgr.Close(cctx)
	})
	return &pairReplica{member: m, owner: owner, mgr: mgr, sink: sink, hold: hold}
}

// take claims shard k for r and brings in its sessions, as a rebalancing round does.
func (r *pairReplica) take(t *testing.T, k int) {
	t.Helper()
	if _, err := r.mgr.Adopt(context.Background(), func(ctx context.Context) error {
		_, err := r.member.Claim(ctx, k, 0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// handOver gives shard k away as gateway/app's handOver does: moving, Drop with flush, Release.
func (r *pairReplica) handOver(t *testing.T, k int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	epoch, ok := r.member.HeldEpoch(k)
	if !ok {
		t.Fatalf("shard %d is not held", k)
	}
	r.owner.setMoving(k, true)
	if _, err := r.mgr.Drop(ctx, func(id string) bool { return cluster.Shard(id, r.owner.shards) == k }, true); err != nil {
		t.Errorf("handover: %v", err)
	}
	if err := r.member.Release(ctx, k, epoch); err != nil {
		t.Fatal(err)
	}
	r.owner.setMoving(k, false)
}

// shutDown stops r as a SIGTERM does: the session layer closes, then the replica leaves.
func (r *pairReplica) shutDown(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := r.mgr.Close(ctx); err != nil {
		t.Errorf("close: %v", err)
	}
	if err := r.member.Leave(ctx); err != nil {
		t.Fatal(err)
	}
}

// showQR starts id on r and returns the QR code it shows.
func (r *pairReplica) showQR(t *testing.T, id string) string {
	t.Helper()
	if _, err := r.mgr.Start(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		info, err := r.mgr.Get(context.Background(), id)
		if err == nil && info.QR != "" {
			return info.QR
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s showed no QR code", id)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTheGatewayAgreesWithThePhoneAboutAScanAcrossAHandover: whatever the moment of the scan, the
// new holder ends connected with the device when the phone linked it, and unpaired (pending or
// expired) when the phone saw the linking fail.
func TestTheGatewayAgreesWithThePhoneAboutAScanAcrossAHandover(t *testing.T) {
	cases := []struct {
		name string
		// scanning plays the scan and the old holder letting go of the shard; it returns what
		// the phone was told.
		scanning func(t *testing.T, w *pairWorld, old *pairReplica, k int, qr, phone string) error
		// wantLinked: what the phone must have been told (the decision), nil when either is
		// right as long as the gateway agrees.
		wantLinked *bool
	}{
		{
			name: "confirmed by the client as the handover begins",
			scanning: func(t *testing.T, w *pairWorld, old *pairReplica, k int, qr, phone string) error {
				return scanWhile(t, w, old, qr, phone, func() { old.handOver(t, k) })
			},
			wantLinked: ptr(true),
		},
		{
			name: "confirmed by the client as the replica shuts down",
			scanning: func(t *testing.T, w *pairWorld, old *pairReplica, k int, qr, phone string) error {
				return scanWhile(t, w, old, qr, phone, func() { old.shutDown(t) })
			},
			wantLinked: ptr(true),
		},
		{
			name: "scanned while the shard is being handed over",
			scanning: func(t *testing.T, w *pairWorld, old *pairReplica, k int, qr, phone string) error {
				old.owner.setMoving(k, true) // the handover began: the shard is no longer acted for
				_, err := w.wa.Pair(context.Background(), qr, phone)
				old.handOver(t, k)
				return err
			},
			wantLinked: ptr(false),
		},
	}
	w := newPairWorld(t)
	used := map[int]bool{} // each case's session on a shard of its own
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old := w.replica(t, fmt.Sprintf("gw-old-%d", i))
			next := w.replica(t, fmt.Sprintf("gw-new-%d", i))
			var id string
			for n := 0; id == "" || used[cluster.Shard(id, w.store.Shards())]; n++ {
				id = fmt.Sprintf("pairing-%d-%d", i, n)
			}
			k := cluster.Shard(id, w.store.Shards())
			used[k] = true
			old.take(t, k)
			qr := old.showQR(t, id)

			scanErr := tc.scanning(t, w, old, k, qr, fmt.Sprintf("5511900000%02d", i))
			linked := scanErr == nil
			if scanErr != nil && !errors.Is(scanErr, fakewa.ErrPairRejected) {
				t.Fatalf("the scan failed for another reason than the client refusing it: %v", scanErr)
			}
			if tc.wantLinked != nil && linked != *tc.wantLinked {
				t.Fatalf("the phone was told linked=%v (scan error %v), want %v", linked, scanErr, *tc.wantLinked)
			}

			next.take(t, k)
			if linked {
				waitInfo(t, next, id, "connected with the device the phone linked", func(in session.Info) bool {
					return in.Connected && in.Paired && in.Status == laravel.StatusConnected
				})
				return
			}
			waitInfo(t, next, id, "unpaired", func(in session.Info) bool {
				return !in.Paired && (in.Status == laravel.StatusPending || in.Status == laravel.StatusExpired)
			})
			time.Sleep(500 * time.Millisecond) // nothing may link it afterwards either
			if in, _ := next.mgr.Get(context.Background(), id); in.Paired || in.Connected {
				t.Fatalf("the phone saw the linking fail, but the new holder has the session %+v", in)
			}
		})
	}
}

// scanWhile has the phone scan qr and, once old's client confirmed the pairing (and is held
// before dispatching it), runs letGo (the old holder letting go of the session); the client
// continues when letGo returned or after holdFor. It returns what the phone was told.
func scanWhile(t *testing.T, w *pairWorld, old *pairReplica, qr, phone string, letGo func()) error {
	t.Helper()
	old.hold.arm()
	scanned := make(chan error, 1)
	go func() {
		_, err := w.wa.Pair(context.Background(), qr, phone)
		scanned <- err
	}()
	select {
	case <-old.hold.reached: // the phone may have been told already: fakewa answers on the confirmation
	case <-time.After(20 * time.Second):
		select {
		case err := <-scanned:
			t.Fatalf("the client never confirmed the scan (the phone was told %v)", err)
		default:
			t.Fatal("the client never confirmed the scan")
		}
	}
	letGo()
	close(old.hold.release)
	select {
	case err := <-scanned:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("the scan never ended")
		return nil
	}
}

func waitInfo(t *testing.T, r *pairReplica, id, what string, ok func(session.Info) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last session.Info
	for time.Now().Before(deadline) {
		in, err := r.mgr.Get(context.Background(), id)
		if err == nil {
			last = in
			if ok(in) {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the new holder's %s is not %s: %+v (events %v)", id, what, last, r.sink.Of(id))
}

func ptr[T any](v T) *T { return &v }
