package batch

// Regression test of issue 16's duplicated messages across a cluster SIGKILL (cluster-failover
// at 500 users: 8 messages Laravel applied twice, in two batches): a batch the killed replica had
// in flight carries the messages of several of its sessions, whose shards the survivors claim one
// by one, some by one survivor and some by another. Each survivor adopted only part of the
// recorded batch, took the record for broken, removed it and batched its part anew under a new
// Idempotency-Key, which Laravel applied a second time.

import (
	"context"
	"fmt"
	"testing"
	"time"

	"wagate/gateway/cluster"
	"wagate/gateway/outbox"
	"wagate/internal/redistest"
)

// twoSessionsOnTwoShards returns two session ids whose shards (of n) differ.
func twoSessionsOnTwoShards(t *testing.T, n int) (a, b string) {
	t.Helper()
	for i := 2; i < 100; i++ {
		if s := fmt.Sprintf("s%d", i); cluster.Shard(s, n) != cluster.Shard("s1", n) {
			return "s1", s
		}
	}
	t.Fatal("no two sessions on two shards")
	return "", ""
}

func TestABatchInFlightAtAReplicasSIGKILLIsAppliedOnceWhateverSurvivorsTakeItsShards(t *testing.T) {
	cases := []struct {
		name string
		// claims[i] are the shards (0: the first session's, 1: the second's) each survivor
		// (gw-1, gw-3) holds from the takeover's step i on.
		claims [][2][]int
	}{
		{name: "its sessions' shards go to two survivors", claims: [][2][]int{{{0}, {1}}}},
		{name: "one survivor claims its sessions' shards seconds apart", claims: [][2][]int{{{0}, nil}, {{0}, nil}, {{0, 1}, nil}}},
		{name: "the survivors claim them at different steps", claims: [][2][]int{{nil, {1}}, {{0}, {1}}}},
	}
	for _, tc := range cases {
		for _, applied := range []bool{true, false} {
			name := tc.name + "/Laravel had applied it"
			if !applied {
				name = tc.name + "/it never reached Laravel"
			}
			t.Run(name, func(t *testing.T) {
				redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
					const shards = 16
					sa, sb := twoSessionsOnTwoShards(t, shards)
					k := [2]int{cluster.Shard(sa, shards), cluster.Shard(sb, shards)}
					lv, clk := newLaravelModel(), newFakeClock()
					cfg := Config{BatchSize: 50, MessageInterval: time.Second}
					replica := func(id string) (*fixture, *shardSet) {
						f := newFixtureWith(t, b, cfg, outbox.Config{Shards: shards, GatewayID: id, Consumer: id + "/1"}, lv, clk)
						h := &shardSet{held: map[int]bool{}}
						f.ob.SetHolds(h.holds)
						return f, h
					}

					// gw-2 holds both sessions; their messages go out in one batch, recorded and
					// sent (or only recorded), and gw-2 is SIGKILLed before any acknowledgement.
					killed, hk := replica("gw-2")
					hk.set(k[0], true)
					hk.set(k[1], true)
					killed.deliver(t, message(sa, 1), message(sa, 2), message(sb, 1), message(sb, 2))
					killed.poll(t)
					clk.Advance(2 * time.Second)
					killed.d.pollMu.Lock()
					killed.d.mu.Lock()
					killed.d.markInFlight()
					batches := killed.d.co.TakeAll(TriggerTime)
					killed.d.mu.Unlock()
					sendable, err := killed.d.record(context.Background(), batches)
					if err != nil || len(sendable) != 1 || len(sendable[0].Items) != 4 {
						t.Fatalf("record: %d batches, %v; want one batch of the 4 messages", len(sendable), err)
					}
					if applied {
						if _, err := killed.d.post(context.Background(), sendable[0]); err != nil {
							t.Fatal(err)
						}
					}
					killed.d.pollMu.Unlock()

					// The survivors claim the shards as the case says, and deliver.
					g1, h1 := replica("gw-1")
					g3, h3 := replica("gw-3")
					for step := range 8 {
						if step < len(tc.claims) {
							for _, i := range tc.claims[step][0] {
								h1.set(k[i], true)
							}
							for _, i := range tc.claims[step][1] {
								h3.set(k[i], true)
							}
						}
						g1.poll(t)
						g3.poll(t)
						clk.Advance(2 * time.Second)
					}

					calls := lv.Calls()
					for item, keys := range keysPerItem(calls) {
						if len(keys) != 1 {
							t.Errorf("%s reached Laravel under %d Idempotency-Keys: applied %d times (calls %+v)", item, len(keys), len(keys), calls)
						}
					}
					if n := len(keysPerItem(calls)); n != 4 {
						t.Errorf("Laravel received %d messages; want all 4", n)
					}
					if lv.stale != 0 {
						t.Errorf("Laravel saw %d messages older than one it had applied: out of order", lv.stale)
					}
					if n := g1.outboxLength(t); n != 0 {
						t.Errorf("%d entries left in the outbox", n)
					}
					if recs, err := g1.ob.RecordedBatches(context.Background()); err != nil || len(recs) != 0 {
						t.Errorf("batch records left: %+v, %v", recs, err)
					}
				})
			})
		}
	}
}
