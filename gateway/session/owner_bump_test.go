package session

import (
	"context"
	"errors"
	"testing"

	"wagate/gateway/event"
	"wagate/gateway/storage"
)

// bumpOwner holds every session at epoch and raises it on Bump (or refuses, with refuse).
type bumpOwner struct {
	epoch  int64
	refuse bool
	bumps  []int64 // the epochs Bump was asked to raise
}

func (o *bumpOwner) Epoch(string) (int, int64, bool) { return 7, o.epoch, true }
func (o *bumpOwner) Fence(context.Context, int, int64) (bool, error) {
	return true, nil
}
func (o *bumpOwner) Bump(_ context.Context, shard int, epoch int64) (int64, error) {
	o.bumps = append(o.bumps, epoch)
	if o.refuse || shard != 7 || epoch != o.epoch {
		return 0, errors.New("cluster: not the holder of this shard at this epoch")
	}
	o.epoch++
	return o.epoch, nil
}

type memStore struct{}

func (memStore) Load(context.Context) ([]storage.Record, error)          { return nil, nil }
func (memStore) Put(storage.Record)                                      {}
func (memStore) Flush(context.Context) error                             { return nil }
func (memStore) NextEpoch(_ context.Context, floor int64) (int64, error) { return floor, nil }

type nopSink struct{}

func (nopSink) Deliver(context.Context, event.Event) error { return nil }
func (nopSink) Close(context.Context) error                { return nil }

// In cluster mode a session that used up its VersionsPerEpoch sequence numbers at its shard's
// epoch has the shard's epoch raised in Redis (Owner.Bump) and continues at the new one; a
// refused bump emits nothing; an epoch already raised (another session bumped it) is taken
// without bumping again.
func TestClusterSequenceOverflowBumpsTheShardEpoch(t *testing.T) {
	cases := []struct {
		name        string
		owner       bumpOwner
		atEpoch     int64
		wantVersion int64
		wantOK      bool
		wantBumps   int
	}{
		{"used up at the shard's epoch: bumped", bumpOwner{epoch: 500}, 500, 501*VersionsPerEpoch + 1, true, 1},
		{"bump refused: not emitted", bumpOwner{epoch: 500, refuse: true}, 500, 0, false, 1},
		{"the shard's epoch already raised: taken, no bump", bumpOwner{epoch: 502}, 500, 502*VersionsPerEpoch + 1, true, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			owner := tc.owner
			m, err := New(context.Background(), Config{Owner: &owner}, nil, memStore{}, nopSink{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = m.Close(context.Background()) })
			s := m.getOrCreate("s1")
			s.mu.Lock()
			s.epoch, s.seq = tc.atEpoch, VersionsPerEpoch-1
			v, ok := m.nextVersion(s)
			s.mu.Unlock()
			if v != tc.wantVersion || ok != tc.wantOK || len(owner.bumps) != tc.wantBumps {
				t.Fatalf("nextVersion = %d, %v with bumps %v; want %d, %v with %d bumps", v, ok, owner.bumps, tc.wantVersion, tc.wantOK, tc.wantBumps)
			}
		})
	}
}
