package app_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"wagate/fakelaravel"
	"wagate/gateway/cluster"
	"wagate/gateway/laravel"
	"wagate/gateway/session"
	"wagate/gateway/storage"
	"wagate/internal/proctest"
	"wagate/simulator/fakewa"
)

// A zombie (a replica whose lease expired while it kept running its sessions) loses the device
// to the shard's new holder: WhatsApp replaces its stream, and what it then writes at its old
// epoch does not stick where it lands: its registry write (parking the session as taken over) is
// refused by the conditional upsert when it comes after the holder's (counted; when it comes
// first the holder's overwrites it), its "disconnected" event is ignored by Laravel's version
// guard, and a logout it is asked for is refused (the device stays linked). The record and
// Laravel keep the new holder's connected state at its epoch. Since a member past its renew
// deadline holds nothing (cluster.Member.HeldEpoch, issue 16's SIGSTOP duplicate), the zombie
// itself knows it holds nothing by the time the holder runs the session: its logout is refused
// before the check in Redis (counted alike, where="logout"), and its registry write and event are
// not made (where="registry", "event"); the checks where they land are for a zombie whose clock
// stood still (a suspended VM), tested in gateway/session and gateway/storage.
func TestAZombiesLateWritesAreRefusedWhereTheyLand(t *testing.T) {
	w := newClusterWorld(t)
	ctx := context.Background()
	zombie := w.start("gw-z", w.redisURL)
	const id = "zombie_1"
	startAndPair(t, ctx, w, zombie.c, id, "15558880999")
	oldEpoch := cluster.EpochOf(mustLaravelSession(t, w, id).StatusVersion)

	zombie.gw.Zombify()
	holder := w.start("gw-h", w.redisURL)
	proctest.Eventually(t, "the new holder to run the session", 30*time.Second, func() (bool, string) {
		return holder.connected(id), ""
	})
	proctest.Eventually(t, "WhatsApp to replace the zombie's stream", 15*time.Second, func() (bool, string) {
		for _, e := range w.wa.Events() {
			if e.Kind == fakewa.EventReplaced {
				return true, ""
			}
		}
		return false, "no replaced stream yet"
	})
	if _, err := zombie.gw.Manager().Logout(ctx, id); !errors.Is(err, session.ErrNotOwner) {
		t.Fatalf("the zombie's logout: %v, want ErrNotOwner", err)
	}
	if v := zombie.metric(t, `wagate_cluster_fenced_writes_total{where="logout"}`); v != "1" {
		t.Errorf("zombie's fenced logouts %q, want 1", v)
	}
	for _, e := range w.wa.Events() {
		if e.Kind == fakewa.EventLoggedOut {
			t.Fatalf("the zombie logged the device out: %+v", e)
		}
	}
	// Time for the zombie's registry write and event to land (and be refused or overwritten).
	time.Sleep(2 * time.Second)
	t.Logf("zombie's registry writes refused by the conditional upsert: %s",
		zombie.metric(t, `wagate_cluster_fenced_writes_total{where="registry_refused"}`))
	if !holder.connected(id) {
		t.Error("the holder lost the session")
	}

	db, err := storage.Open(ctx, storage.Options{DSN: w.dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	recs, err := storage.NewRegistry(db, nil).Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var rec storage.Record
	for _, r := range recs {
		if r.SessionID == id {
			rec = r
		}
	}
	if rec.Parked != "" || rec.Status != laravel.StatusConnected || rec.Epoch <= oldEpoch {
		t.Errorf("registry record after the zombie's write: %+v (zombie's epoch %d)", rec, oldEpoch)
	}
	s := mustLaravelSession(t, w, id)
	if s.EstadoQR != laravel.StatusConnected || cluster.EpochOf(s.StatusVersion) <= oldEpoch {
		t.Errorf("Laravel after the zombie's event: %s at version %d (zombie's epoch %d)", s.EstadoQR, s.StatusVersion, oldEpoch)
	}
}

func mustLaravelSession(t *testing.T, w *clusterWorld, id string) fakelaravel.SessionState {
	t.Helper()
	s, ok := laravelSession(context.Background(), w, id)
	if !ok {
		t.Fatalf("Laravel does not know %s", id)
	}
	return s
}
