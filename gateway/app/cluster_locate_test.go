package app

import (
	"context"
	"fmt"
	"testing"

	"wagate/gateway/api"
	"wagate/gateway/cluster"
	"wagate/gateway/metrics"
	"wagate/internal/redistest"
)

// Locate routes a request by this replica's knowledge: here for a shard it holds, to the
// holder's advertised URL for one another live replica holds, and "moving" (503, retry) while the
// shard is handed over, held by nobody live, or the last table still names this replica although
// it no longer holds the shard.
func TestLocateRoutesByTheShardTable(t *testing.T) {
	ctx := context.Background()
	store, err := cluster.New(redistest.Mini(t).Client(t), cluster.Options{Shards: 16})
	if err != nil {
		t.Fatal(err)
	}
	n := &clusterNode{store: store, name: "gw-1", metrics: metrics.New().RegisterCluster(), moving: map[int]bool{}}
	me, err := store.Join(ctx, "gw-1", "http://10.0.0.1:4000", cluster.Callbacks{})
	if err != nil {
		t.Fatal(err)
	}
	n.member.Store(me)
	other, err := store.Join(ctx, "gw-2", "http://10.0.0.2:4000", cluster.Callbacks{})
	if err != nil {
		t.Fatal(err)
	}
	// One session per shard situation.
	ids := map[string]string{} // situation -> session id
	shardOf := func(id string) int { return cluster.Shard(id, 16) }
	used := map[int]bool{}
	for i := 0; len(ids) < 5; i++ {
		id := fmt.Sprintf("s%d", i)
		if used[shardOf(id)] {
			continue
		}
		used[shardOf(id)] = true
		for _, sit := range []string{"mine", "theirs", "nobody", "handing over", "released"} {
			if _, ok := ids[sit]; !ok {
				ids[sit] = id
				break
			}
		}
	}
	for _, sit := range []string{"mine", "handing over", "released"} {
		if _, err := me.Claim(ctx, shardOf(ids[sit]), 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := other.Claim(ctx, shardOf(ids["theirs"]), 0); err != nil {
		t.Fatal(err)
	}
	members, holders, err := store.View(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n.setRoutes(members, holders) // the round's table, taken before the release below
	e, _ := me.HeldEpoch(shardOf(ids["released"]))
	if err := me.Release(ctx, shardOf(ids["released"]), e); err != nil {
		t.Fatal(err)
	}
	n.moving[shardOf(ids["handing over"])] = true

	for _, tc := range []struct {
		situation string
		want      api.Location
	}{
		{"mine", api.Location{Self: true}},
		{"theirs", api.Location{URL: "http://10.0.0.2:4000"}},
		{"nobody", api.Location{Moving: true}},
		{"handing over", api.Location{Moving: true}},
		{"released", api.Location{Moving: true}},
	} {
		got, err := n.Locate(ctx, ids[tc.situation])
		if err != nil || got != tc.want {
			t.Errorf("%s (%s): Locate = %+v, %v; want %+v", tc.situation, ids[tc.situation], got, err, tc.want)
		}
	}
}
