package cluster

import (
	"context"
	"slices"
	"testing"
	"time"
)

func TestPlanClaimsWhatIsMineAndFreeAndHandsOverAtABoundedRate(t *testing.T) {
	const shards = 64
	two := []string{"gw-0", "gw-1"}
	three := []string{"gw-0", "gw-1", "gw-2"}
	owned := func(members []string, by ...string) []string { // each shard held by its assignee's incarnation #1, if in by
		out := AssignAll(shards, members)
		for k, m := range out {
			if slices.Contains(by, m) {
				out[k] = m + "#1"
			} else {
				out[k] = ""
			}
		}
		return out
	}
	assignedTo := func(members []string, me string) (ks []int) {
		for k, m := range AssignAll(shards, members) {
			if m == me {
				ks = append(ks, k)
			}
		}
		return ks
	}
	waitingFor := func(members []string, gone string) []string { // the shards of gone wait for its return
		out := make([]string, shards)
		for k, m := range AssignAll(shards, members) {
			if m == gone {
				out[k] = gone
			}
		}
		return out
	}
	cases := []struct {
		name         string
		me           string
		live         []string
		holders      []string
		returning    []string
		budget       int
		wantClaim    []int
		wantHandOver int // how many
	}{
		{"first start: claim every shard assigned to me", "gw-0#1", two, make([]string, shards), nil, 2,
			assignedTo(two, "gw-0"), 0},
		{"steady state: nothing to do", "gw-0#1", two, owned(two, "gw-0", "gw-1"), nil, 2, nil, 0},
		{"gw-1 died: claim only its shards now assigned to me", "gw-0#1", []string{"gw-0"}, owned(two, "gw-0"), nil, 2,
			assignedTo(two, "gw-1"), 0},
		{"gw-2 joined: hand over at most the budget, claim nothing", "gw-0#1", three, owned(two, "gw-0", "gw-1"), nil, 2,
			nil, 2},
		{"the joiner claims nothing still held by live members", "gw-2#1", three, owned(two, "gw-0", "gw-1"), nil, 2,
			nil, 0},
		{"the joiner claims what was handed over (released)", "gw-2#1", three,
			func() []string {
				h := owned(two, "gw-0", "gw-1")
				for _, k := range assignedTo(three, "gw-2") {
					h[k] = ""
				}
				return h
			}(), nil, 2, assignedTo(three, "gw-2"), 0},
		{"restarted while the old incarnation is live: wait for it", "gw-0#2", two, owned(two, "gw-0", "gw-1"), nil, 2,
			nil, 0},
		{"gw-0 left to restart: its shards wait for it, nobody else claims them", "gw-1#1", []string{"gw-1", "gw-2"},
			owned(three, "gw-1", "gw-2"), waitingFor(three, "gw-0"), 2, nil, 0},
		{"gw-0 is back (a new incarnation): it claims exactly the shards that waited for it", "gw-0#2", three,
			owned(three, "gw-1", "gw-2"), nil, 2, assignedTo(three, "gw-0"), 0},
		{"a shard still marked as waiting for me (read as I joined) is mine to claim", "gw-0#2", three,
			owned(three, "gw-1", "gw-2"), waitingFor(three, "gw-0"), 2, assignedTo(three, "gw-0"), 0},
		{"the others do not hand over to or claim for the returned one: nothing to do", "gw-1#1", three,
			owned(three, "gw-1", "gw-2"), nil, 2, nil, 0},
		{"gw-0's grace ended without it: its shards are claimed as after a death", "gw-1#1", []string{"gw-1", "gw-2"},
			owned(three, "gw-1", "gw-2"), nil, 2, func() (ks []int) {
				for _, k := range assignedTo(three, "gw-0") {
					if Assign(k, []string{"gw-1", "gw-2"}) == "gw-1" {
						ks = append(ks, k)
					}
				}
				return ks
			}(), 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mv := Plan(shards, c.me, Table{Live: c.live, Holders: c.holders, Returning: c.returning}, c.budget)
			if !slices.Equal(mv.Claim, c.wantClaim) {
				t.Errorf("claim %v, want %v", mv.Claim, c.wantClaim)
			}
			if len(mv.HandOver) != c.wantHandOver {
				t.Errorf("hand over %v, want %d shards", mv.HandOver, c.wantHandOver)
			}
			for _, k := range mv.HandOver {
				if c.holders[k] != c.me || Assign(k, c.live) == NameOf(c.me) {
					t.Errorf("hands over shard %d, held by %q and assigned to %q", k, c.holders[k], Assign(k, c.live))
				}
			}
		})
	}
}

func TestTableShowsLiveHoldersByNameAndOrphansAsFree(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	a := w.join(t, "gw-a")
	mustClaim(t, a, 1)
	w.advance(5 * time.Second)
	b := w.join(t, "gw-b")
	mustClaim(t, b, 2)
	if tb, err := w.s.Table(ctx); err != nil || tb.Holders[1] != a.ID() || tb.Holders[2] != b.ID() || len(tb.Live) != 2 {
		t.Fatalf("Table = %+v, %v", tb, err)
	}
	w.advance(6 * time.Second) // a's lease (from t0) is over, b's is not
	tb, err := w.s.Table(ctx)
	if err != nil || tb.Holders[1] != "" || tb.Holders[2] != b.ID() || !slices.Equal(tb.Live, []string{"gw-b"}) || tb.Returning[1] != "" {
		t.Fatalf("after a's lease ended: Table = %+v, %v; want shard 1 free (waiting for nobody), shard 2 gw-b, live [gw-b]", tb, err)
	}
	if NameOf("gw#a#12") != "gw#a" || NameOf("plain") != "plain" {
		t.Fatal("NameOf does not cut at the last '#'")
	}
}
