package outbox

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"wagate/gateway/cluster"
	"wagate/gateway/event"
	"wagate/internal/redistest"
)

const testShards = 16

// holdings is a replica's set of held shards, changed by the test as claims would.
type holdings struct {
	mu sync.Mutex
	k  map[int]bool
}

func (h *holdings) set(shard int, held bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.k == nil {
		h.k = map[int]bool{}
	}
	h.k[shard] = held
}

func (h *holdings) holds(shard int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.k[shard]
}

// twoSessionsOnTwoShards returns two session ids whose shards differ.
func twoSessionsOnTwoShards(t *testing.T) (string, string) {
	t.Helper()
	a := "s-a"
	for i := range 100 {
		b := fmt.Sprintf("s-b%d", i)
		if cluster.Shard(a, testShards) != cluster.Shard(b, testShards) {
			return a, b
		}
	}
	t.Fatal("no two sessions on different shards")
	return "", ""
}

func shardedReplica(t *testing.T, b *redistest.Backend, gatewayID string) (*Outbox, *holdings) {
	t.Helper()
	o := newOutbox(t, b, Config{Shards: testShards, GatewayID: gatewayID, Consumer: gatewayID + "/1"})
	h := &holdings{}
	o.SetHolds(h.holds)
	return o, h
}

func versions(entries []Entry) []int64 {
	var v []int64
	for _, e := range entries {
		v = append(v, e.Event.Version)
	}
	return v
}

func appendAll(t *testing.T, o *Outbox, evs ...event.Event) {
	t.Helper()
	for _, ev := range evs {
		if _, err := o.Append(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
}

// Each replica reads every entry of the shards it holds, in order, and none of the others: two
// replicas never send one session's events at once.
func TestShardedReplicasEachReadOnlyTheirShardsEntriesInOrder(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		s1, s2 := twoSessionsOnTwoShards(t)
		ra, ha := shardedReplica(t, b, "gw-a")
		rb, hb := shardedReplica(t, b, "gw-b")
		ha.set(cluster.Shard(s1, testShards), true)
		hb.set(cluster.Shard(s2, testShards), true)
		for _, r := range []*Outbox{ra, rb} {
			if _, err := r.Adopt(ctx); err != nil {
				t.Fatal(err)
			}
		}
		for v := int64(1); v <= 6; v++ {
			appendAll(t, ra, testEvent(s1, v, event.KindStatus, "connected"), testEvent(s2, v, event.KindStatus, "connected"))
		}
		// Small reads, alternating, like two flushers polling at once.
		var gotA, gotB []Entry
		for range 10 {
			a, err := ra.ReadNew(ctx, 2)
			if err != nil {
				t.Fatal(err)
			}
			bb, err := rb.ReadNew(ctx, 3)
			if err != nil {
				t.Fatal(err)
			}
			gotA, gotB = append(gotA, a...), append(gotB, bb...)
		}
		want := []int64{1, 2, 3, 4, 5, 6}
		for _, c := range []struct {
			name, sid string
			got       []Entry
		}{{"gw-a", s1, gotA}, {"gw-b", s2, gotB}} {
			if !slices.Equal(versions(c.got), want) {
				t.Errorf("%s read versions %v; want %v of %s only", c.name, versions(c.got), want, c.sid)
			}
			for _, e := range c.got {
				if e.Event.SessionID != c.sid {
					t.Errorf("%s read an entry of %s, whose shard it does not hold", c.name, e.Event.SessionID)
				}
			}
		}
		// The skipped entries stay in the stream until their holder delivers them.
		if st, _ := ra.Stats(ctx); st.Length != 12 {
			t.Fatalf("stream length %d before any delivery; want 12", st.Length)
		}
		if err := ra.Ack(ctx, gotA[0].ID); err != nil {
			t.Fatal(err)
		}
		if st, _ := rb.Stats(ctx); st.Length != 11 {
			t.Fatalf("stream length %d after one delivery; want 11", st.Length)
		}
	})
}

// A replica taking a shard (its holder died after reading, acknowledging part of it to Laravel)
// adopts the shard's undelivered entries at once and in order, whether the old holder had read
// them or not, and reads nothing of them twice; the old holder's next Adopt drops the shard.
func TestANewHolderAdoptsTheOldHoldersUndeliveredEntriesAtOnceAndFirst(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		s1, s2 := twoSessionsOnTwoShards(t)
		k1 := cluster.Shard(s1, testShards)
		old, hOld := shardedReplica(t, b, "gw-old")
		heir, hHeir := shardedReplica(t, b, "gw-heir")
		hOld.set(k1, true)
		hHeir.set(cluster.Shard(s2, testShards), true)
		for _, r := range []*Outbox{old, heir} {
			if _, err := r.Adopt(ctx); err != nil {
				t.Fatal(err)
			}
		}
		appendAll(t, old, testEvent(s1, 1, event.KindStatus, "connected"), testEvent(s1, 2, event.KindStatus, "connected"),
			testEvent(s2, 1, event.KindStatus, "connected"), testEvent(s1, 3, event.KindStatus, "connected"))
		read, err := old.ReadNew(ctx, 2) // s1 v1, v2: pending at the old holder
		if err != nil {
			t.Fatal(err)
		}
		if err := old.Ack(ctx, read[0].ID); err != nil { // v1 delivered
			t.Fatal(err)
		}
		// The heir reads past all of it (s1's entries are not its shard's).
		if got, err := heir.ReadNew(ctx, 10); err != nil || !slices.Equal(versions(got), []int64{1}) || got[0].Event.SessionID != s2 {
			t.Fatalf("heir read %v (%v); want s2's v1 only", versions(got), err)
		}
		appendAll(t, old, testEvent(s1, 4, event.KindStatus, "connected")) // not read by anyone yet

		// The old holder dies (it never acknowledges v2); the heir takes its shard.
		hOld.set(k1, false)
		hHeir.set(k1, true)
		ad, err := heir.Adopt(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(versions(ad.Entries), []int64{2, 3, 4}) {
			t.Fatalf("heir adopted %v; want s1's undelivered v2, v3, v4 in order, at once", versions(ad.Entries))
		}
		appendAll(t, heir, testEvent(s1, 5, event.KindStatus, "connected"))
		got, err := heir.ReadNew(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(versions(got), []int64{5}) {
			t.Fatalf("heir then read %v; want only the newer v5 (v4 was adopted, not read twice)", versions(got))
		}
		if again, _ := heir.Adopt(ctx); len(again.Entries) != 0 || again.Dropped != nil {
			t.Fatalf("a second Adopt without a change adopted %d entries (dropped %v)", len(again.Entries), again.Dropped != nil)
		}
		lost, err := old.Adopt(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if lost.Dropped == nil || !lost.Dropped(s1) || lost.Dropped(s2) {
			t.Fatalf("old holder's Adopt after losing the shard: Dropped must match %s only", s1)
		}
		if c := heir.Counters(); c.Adopted != 3 {
			t.Fatalf("heir counters %+v; want 3 adopted", c)
		}
	})
}

// Without shards (one gateway) every entry is read, through the shared group, as before.
func TestAnUnshardedOutboxReadsEveryEntryAndAdoptsNothing(t *testing.T) {
	b := redistest.Mini(t)
	ctx := context.Background()
	o := newOutbox(t, b, Config{})
	s1, s2 := twoSessionsOnTwoShards(t)
	appendAll(t, o, testEvent(s1, 1, event.KindStatus, "connected"), testEvent(s2, 1, event.KindStatus, "connected"))
	if ad, err := o.Adopt(ctx); err != nil || len(ad.Entries) != 0 || ad.Dropped != nil {
		t.Fatalf("Adopt without shards: %+v, %v", ad, err)
	}
	if got, err := o.ReadNew(ctx, 10); err != nil || len(got) != 2 {
		t.Fatalf("read %d entries (%v); want both", len(got), err)
	}
}
