package session_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"

	"wagate/gateway/event"
	"wagate/gateway/laravel"
	"wagate/gateway/session"
	"wagate/gateway/storage"
)

// fakeOwner is cluster ownership in memory: the epoch each held session's shard is held at, and
// what the Redis fence check answers.
type fakeOwner struct {
	mu     sync.Mutex
	epochs map[string]int64 // session id -> epoch; absent: not held
	refuse bool             // Fence answers "no longer yours"
	fences int
	fenced []string // Hooks.FencedWrite's where, in order
}

func newOwner() *fakeOwner { return &fakeOwner{epochs: map[string]int64{}} }

func (o *fakeOwner) hold(id string, epoch int64) { o.mu.Lock(); o.epochs[id] = epoch; o.mu.Unlock() }
func (o *fakeOwner) lose(id string)              { o.mu.Lock(); delete(o.epochs, id); o.mu.Unlock() }

func (o *fakeOwner) Epoch(id string) (int, int64, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	e, ok := o.epochs[id]
	return 0, e, ok
}

func (o *fakeOwner) Bump(ctx context.Context, shard int, epoch int64) (int64, error) {
	return 0, errors.New("not used")
}

func (o *fakeOwner) Fence(ctx context.Context, shard int, epoch int64) (bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.fences++
	return !o.refuse, nil
}

func (o *fakeOwner) fencedWrites() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.fenced)
}

// clusterRig is a rig whose manager runs in cluster mode with owner.
func clusterRig(t *testing.T, owner *fakeOwner) *rig {
	cfg := session.Config{Owner: owner}
	cfg.Hooks.FencedWrite = func(where string) { owner.mu.Lock(); owner.fenced = append(owner.fenced, where); owner.mu.Unlock() }
	return newRig(t, cfg)
}

// clusterRigHolding is a cluster rig whose owner holds session id (epoch 500), with the session
// started (it shows its QR code); closed when the test ends.
func clusterRigHolding(t *testing.T, id string) (*rig, *fakeOwner) {
	t.Helper()
	owner := newOwner()
	r := clusterRig(t, owner)
	t.Cleanup(r.close)
	owner.hold(id, 500)
	r.start(id)
	return r, owner
}

// versions returns the versions of id's events, in order.
func versions(r *rig, id string) []int64 {
	var out []int64
	for _, ev := range r.sink.Events() {
		if ev.SessionID == id {
			out = append(out, ev.Version)
		}
	}
	return out
}

// In cluster mode a session's versions are its shard's epoch*1e6 + seq: they continue from a
// new claim's epoch (a takeover jumps above everything the earlier holder sent), and its
// registry record carries that epoch (the registry's fence).
func TestClusterVersionsComeFromTheShardEpoch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, owner := clusterRigHolding(t, "s1")
		r.driver.Conn("s1").Scan()
		r.wantEvents("s1", "status:pending", "qr:code-1", "status:connected")
		if got, want := versions(r, "s1"), []int64{500_000_001, 500_000_002, 500_000_003}; !slices.Equal(got, want) {
			t.Fatalf("versions %v, want %v", got, want)
		}
		if rec, _ := r.store.Record("s1"); rec.Epoch != 500 {
			t.Fatalf("registry record at epoch %d, want 500", rec.Epoch)
		}
		owner.hold("s1", 700) // claimed again (handed over and back)
		r.driver.Conn("s1").DropAndStayDown()
		synctest.Wait()
		v := versions(r, "s1")
		if v[3] != 700_000_001 {
			t.Fatalf("first version after the new claim %d, want 700000001 (all: %v)", v[3], v)
		}
		if rec, _ := r.store.Record("s1"); rec.Epoch != 700 {
			t.Fatalf("registry record at epoch %d, want 700", rec.Epoch)
		}
	})
}

// A session whose shard this replica does not hold is not started, and once its shard is lost
// nothing it does is emitted or written: each refusal is counted where it happened.
func TestClusterASessionOfAShardNotHeldIsNeitherStartedNorReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		owner := newOwner()
		r := clusterRig(t, owner)
		defer r.close()
		if _, err := r.m.Start(context.Background(), "s1"); !errors.Is(err, session.ErrNotOwner) {
			t.Fatalf("start of a session not held: %v, want ErrNotOwner", err)
		}
		if n := r.driver.Opens(); n != 0 {
			t.Fatalf("%d connections opened for a session not held", n)
		}
		if _, err := r.m.Get(context.Background(), "s1"); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("a refused start left a session behind: %v", err)
		}

		owner.hold("s1", 500)
		r.start("s1")
		r.driver.Conn("s1").Scan()
		r.wantEvents("s1", "status:pending", "qr:code-1", "status:connected")
		owner.lose("s1") // taken over behind this replica's back
		for name, call := range map[string]func(context.Context, string) (session.Info, error){"stop": r.m.Stop, "logout": r.m.Logout} {
			if _, err := call(context.Background(), "s1"); !errors.Is(err, session.ErrNotOwner) {
				t.Fatalf("%s of a session whose shard was lost: %v, want ErrNotOwner", name, err)
			}
		}
		if c := r.driver.Conn("s1"); c.Logouts() != 0 || !r.driver.HasDevice(c.DeviceID()) {
			t.Fatal("a replica that lost the shard logged the device out or forgot it")
		}
		r.driver.Conn("s1").DropAndStayDown()
		r.wantEvents("s1", "status:pending", "qr:code-1", "status:connected")
		if rec, _ := r.store.Record("s1"); rec.Status != laravel.StatusConnected {
			t.Fatalf("registry record changed by a replica that lost the shard: %+v", rec)
		}
		// The logout is refused (counted; the stop is not a write), the drop's status is neither
		// written nor emitted, and the reconnect after it is refused.
		if got, want := owner.fencedWrites(), []string{session.FencedLogout, session.FencedRegistry, session.FencedEvent, session.FencedConnect}; !slices.Equal(got, want) {
			t.Fatalf("fenced writes %q, want %q", got, want)
		}
	})
}

// Before every connect the manager asks Redis (Owner.Fence) whether the shard is still its own;
// refused, nothing connects.
func TestClusterConnectIsFenced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		owner := newOwner()
		r := clusterRig(t, owner)
		defer r.close()
		owner.hold("s1", 500)
		owner.refuse = true
		if _, err := r.m.Start(context.Background(), "s1"); !errors.Is(err, session.ErrNotOwner) {
			t.Fatalf("start refused by the fence: %v, want ErrNotOwner", err)
		}
		if n := r.driver.Opens(); n != 0 || owner.fences != 1 {
			t.Fatalf("opens %d, fence checks %d", n, owner.fences)
		}
		if got := owner.fencedWrites(); !slices.Equal(got, []string{session.FencedConnect}) {
			t.Fatalf("fenced writes %q", got)
		}
	})
}

// With whatsmeow's auto-reconnect off (cluster mode), a dropped connection is reconnected by the
// manager after the fence check succeeds; when the check refuses, it stays down.
func TestClusterReconnectsADroppedSessionOnlyAfterTheFence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, owner := clusterRigHolding(t, "s1")
		r.driver.Conn("s1").Scan()
		synctest.Wait()
		opens, fences := r.driver.Opens(), owner.fences
		r.driver.Conn("s1").DropAndStayDown()
		synctest.Wait()
		r.wantEvents("s1", "status:pending", "qr:code-1", "status:connected", "status:disconnected", "status:connected")
		if r.driver.Opens() != opens+1 || owner.fences != fences+1 {
			t.Fatalf("reconnect: opens %d -> %d, fence checks %d -> %d", opens, r.driver.Opens(), fences, owner.fences)
		}

		owner.mu.Lock()
		owner.refuse = true
		owner.mu.Unlock()
		r.driver.Conn("s1").DropAndStayDown()
		synctest.Wait()
		r.wantEvents("s1", "status:pending", "qr:code-1", "status:connected", "status:disconnected", "status:connected", "status:disconnected")
		if r.driver.Opens() != opens+1 {
			t.Fatalf("connected although the fence refused: opens %d", r.driver.Opens())
		}
	})
}

// StreamReplaced caused by the shard's new holder does not park the session in the shared
// registry (the new holder runs it); while the shard is still ours it parks it as before.
func TestClusterStreamReplacedByTheNewHolderDoesNotPark(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		owner := newOwner()
		r := clusterRig(t, owner)
		defer r.close()
		for _, id := range []string{"s1", "s2"} {
			owner.hold(id, 500)
			r.start(id)
			r.driver.Conn(id).Scan()
		}
		synctest.Wait()
		owner.lose("s1")
		r.driver.Conn("s1").Replace()
		r.driver.Conn("s2").Replace()
		synctest.Wait()
		if rec, _ := r.store.Record("s1"); rec.Parked != "" {
			t.Fatalf("s1 parked by the replica that lost it: %+v", rec)
		}
		r.wantEvents("s1", "status:pending", "qr:code-1", "status:connected")
		if rec, _ := r.store.Record("s2"); rec.Parked != storage.ParkedStreamReplaced {
			t.Fatalf("s2 (still ours) not parked: %+v", rec)
		}
	})
}

// A handover drops the shard's sessions (clients closed, queued events delivered, registry
// flushed, nothing reported), and Adopt after a claim brings them back from the registry:
// reconnected, their status sent again at the new epoch.
func TestClusterDropThenAdopt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		owner := newOwner()
		r := clusterRig(t, owner)
		defer r.close()
		owner.hold("s1", 500)
		owner.hold("s2", 500)
		r.start("s1")
		c1 := r.driver.Conn("s1")
		c1.Scan()
		r.start("s2")
		synctest.Wait()
		n, err := r.m.Drop(context.Background(), func(id string) bool { return id == "s1" }, true)
		if err != nil || n != 1 {
			t.Fatalf("drop: %d %v", n, err)
		}
		owner.lose("s1")
		if !c1.Released() {
			t.Fatal("a dropped session kept its WhatsApp client")
		}
		if _, err := r.m.Get(context.Background(), "s1"); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("a dropped session is still run: %v", err)
		}
		if _, err := r.m.Get(context.Background(), "s2"); err != nil {
			t.Fatalf("a session of another shard was dropped: %v", err)
		}
		r.wantEvents("s1", "status:pending", "qr:code-1", "status:connected")

		adopted, err := r.m.Adopt(context.Background(), func(context.Context) error { owner.hold("s1", 900); return nil })
		if err != nil || adopted != 1 {
			t.Fatalf("adopt: %d %v", adopted, err)
		}
		synctest.Wait()
		if !r.info("s1").Connected {
			t.Fatalf("adopted session not reconnected: %+v", r.info("s1"))
		}
		var last event.Event
		for _, ev := range r.sink.Events() {
			if ev.SessionID == "s1" {
				last = ev
			}
		}
		if last.Payload != string(laravel.StatusConnected) || last.Version != 900_000_001 {
			t.Fatalf("after adoption the last event is %s v%d, want connected at 900000001", last.Payload, last.Version)
		}
	})
}

// A logout cannot be undone and versions cannot fence it: before one, the manager asks Redis
// whether the shard is still its own; refused (a replica that lost the shard without noticing
// yet), the device stays linked and its data kept.
func TestClusterLogoutIsFenced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, owner := clusterRigHolding(t, "s1")
		c := r.driver.Conn("s1")
		c.Scan()
		synctest.Wait()
		owner.mu.Lock()
		owner.refuse = true
		owner.mu.Unlock()
		if _, err := r.m.Logout(context.Background(), "s1"); !errors.Is(err, session.ErrNotOwner) {
			t.Fatalf("logout refused by the fence: %v, want ErrNotOwner", err)
		}
		if c.Logouts() != 0 || !r.driver.HasDevice(c.DeviceID()) || !r.info("s1").Connected {
			t.Fatalf("a fenced logout touched the device: logouts %d, device kept %v, %+v", c.Logouts(), r.driver.HasDevice(c.DeviceID()), r.info("s1"))
		}
		if got := owner.fencedWrites(); !slices.Equal(got, []string{session.FencedLogout}) {
			t.Fatalf("fenced writes %q", got)
		}
		owner.mu.Lock()
		owner.refuse = false
		owner.mu.Unlock()
		if info, err := r.m.Logout(context.Background(), "s1"); err != nil || info.Status != laravel.StatusLoggedOut {
			t.Fatalf("logout by the holder: %+v %v", info, err)
		}
	})
}
