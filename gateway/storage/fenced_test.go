package storage

import (
	"context"
	"sync"
	"testing"
	"time"

	"wagate/gateway/laravel"
)

// A registry write carries its writer's epoch; the stored row keeps the newest epoch's record:
// a zombie (a replica that lost the session's shard, writing late at its old epoch) is refused
// and reported, the holder at the same or a newer epoch writes, on SQLite and on Postgres.
func TestRegistryRefusesAWriteOfAnOlderEpoch(t *testing.T) {
	eachDialect(t, checkFencedRegistryWrites)
}

func checkFencedRegistryWrites(t *testing.T, db *DB) {
	t.Helper()
	ctx := context.Background()
	r := NewRegistry(db, nil)
	defer r.Close(ctx)
	var mu sync.Mutex
	var refused []Record
	r.SetOnFencedWrite(func(rec Record) { mu.Lock(); refused = append(refused, rec); mu.Unlock() })
	now := time.UnixMilli(1_700_000_000_000)
	const paired = "1555.0:1@s.whatsapp.net"

	steps := []struct {
		name        string
		write       Record
		wantStored  Record // device, status, parked, epoch of the row afterwards
		wantRefused bool
	}{
		{"first holder writes at its epoch",
			Record{SessionID: "s", DeviceJID: paired, Status: laravel.StatusConnected, Epoch: 100},
			Record{DeviceJID: paired, Status: laravel.StatusConnected, Epoch: 100}, false},
		{"the new holder writes at a newer epoch",
			Record{SessionID: "s", DeviceJID: paired, Status: laravel.StatusConnected, Epoch: 200},
			Record{DeviceJID: paired, Status: laravel.StatusConnected, Epoch: 200}, false},
		{"the zombie's late write at the old epoch is refused (it would park the session)",
			Record{SessionID: "s", DeviceJID: paired, Status: laravel.StatusDisconnected, Parked: ParkedStreamReplaced, Epoch: 100},
			Record{DeviceJID: paired, Status: laravel.StatusConnected, Epoch: 200}, true},
		{"the zombie cannot unpair the session either",
			Record{SessionID: "s", Status: laravel.StatusLoggedOut, Epoch: 199},
			Record{DeviceJID: paired, Status: laravel.StatusConnected, Epoch: 200}, true},
		{"the holder writes again at its own epoch",
			Record{SessionID: "s", DeviceJID: paired, Status: laravel.StatusDisconnected, Epoch: 200},
			Record{DeviceJID: paired, Status: laravel.StatusDisconnected, Epoch: 200}, false},
	}
	for _, st := range steps {
		mu.Lock()
		before := len(refused)
		mu.Unlock()
		st.write.CreatedAt, st.write.UpdatedAt = now, now
		r.Put(st.write)
		if err := r.Flush(ctx); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		recs, err := r.Load(ctx)
		if err != nil || len(recs) != 1 {
			t.Fatalf("%s: load %+v %v", st.name, recs, err)
		}
		got := recs[0]
		if got.DeviceJID != st.wantStored.DeviceJID || got.Status != st.wantStored.Status || got.Parked != st.wantStored.Parked || got.Epoch != st.wantStored.Epoch {
			t.Errorf("%s: stored %+v, want device %q status %s parked %q epoch %d", st.name, got,
				st.wantStored.DeviceJID, st.wantStored.Status, st.wantStored.Parked, st.wantStored.Epoch)
		}
		mu.Lock()
		gotRefused := len(refused) > before
		mu.Unlock()
		if gotRefused != st.wantRefused {
			t.Errorf("%s: reported refused = %v, want %v", st.name, gotRefused, st.wantRefused)
		}
	}
}
