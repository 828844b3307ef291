package batch

import (
	"sync"
	"testing"
	"time"

	"wagate/gateway/cluster"
	"wagate/gateway/event"
	"wagate/gateway/outbox"
	"wagate/internal/redistest"
)

// shardSet is a replica's held shards, changed by the test as claims and handovers would.
type shardSet struct {
	mu   sync.Mutex
	held map[int]bool
}

func (s *shardSet) set(k int, held bool) { s.mu.Lock(); s.held[k] = held; s.mu.Unlock() }
func (s *shardSet) holds(k int) bool     { s.mu.Lock(); defer s.mu.Unlock(); return s.held[k] }

// A shard handed from one replica to another: the old holder drops its waiting items unsent and
// unacknowledged, the new holder adopts them from the outbox and is the only one to send them.
func TestAHandedOverShardsWaitingItemsAreSentByTheNewHolderOnly(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		const shards = 16
		k := cluster.Shard("s1", shards)
		cfg := Config{BatchInterval: 5 * time.Second}
		a := newFixture(t, b, cfg, outbox.Config{Shards: shards, GatewayID: "gw-a", Consumer: "gw-a/1"})
		bb := newFixture(t, b, cfg, outbox.Config{Shards: shards, GatewayID: "gw-b", Consumer: "gw-b/1"})
		ha, hb := &shardSet{held: map[int]bool{k: true}}, &shardSet{held: map[int]bool{}}
		a.ob.SetHolds(ha.holds)
		bb.ob.SetHolds(hb.holds)

		a.deliver(t, ev("s1", 1, event.KindStatus, "pending"))
		a.poll(t)
		bb.poll(t)
		if w := a.d.co.Waiting(event.KindStatus); w != 1 {
			t.Fatalf("holder waits with %d status items; want 1", w)
		}
		if w := bb.d.co.Waiting(event.KindStatus); w != 0 {
			t.Fatalf("the other replica holds %d items of a shard it does not hold", w)
		}

		ha.set(k, false)
		hb.set(k, true)
		a.poll(t)
		bb.poll(t)
		a.clk.Advance(6 * time.Second)
		bb.clk.Advance(6 * time.Second)
		a.poll(t)
		bb.poll(t)
		if n := len(a.lv.Calls()); n != 0 {
			t.Fatalf("the old holder sent %d batches after losing the shard; want 0", n)
		}
		if it, ok := bb.lv.Applied(event.KindStatus, "s1"); !ok || it.Version != 1 {
			t.Fatalf("new holder's Laravel has s1 %+v (%v); want version 1", it, ok)
		}
		if n := a.outboxLength(t); n != 0 {
			t.Fatalf("outbox holds %d entries after the new holder delivered; want 0", n)
		}
		if c := bb.ob.Counters(); c.Adopted != 1 {
			t.Fatalf("new holder's outbox counters %+v; want 1 adopted", c)
		}
	})
}

// Drop removes exactly the dropped sessions' waiting items, of every kind.
func TestCoalescerDropRemovesOnlyTheDroppedSessionsItems(t *testing.T) {
	c := NewCoalescer(100, time.Second, time.Second)
	now := time.Unix(1700000000, 0)
	for i, e := range []event.Event{ev("s1", 1, event.KindQR, "q"), ev("s1", 2, event.KindStatus, "pending"), ev("s2", 1, event.KindStatus, "pending")} {
		c.Add(outbox.Entry{ID: "1-" + string(rune('0'+i)), Event: e}, now)
	}
	if n := c.Drop(func(sid string) bool { return sid == "s1" }); n != 2 {
		t.Fatalf("dropped %d items; want s1's 2", n)
	}
	if c.Waiting(event.KindQR) != 0 || c.Waiting(event.KindStatus) != 1 {
		t.Fatalf("waiting QR %d status %d; want 0 and s2's 1", c.Waiting(event.KindQR), c.Waiting(event.KindStatus))
	}
}
