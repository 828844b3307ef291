package cluster

import (
	"slices"
	"testing"
)

func TestAssignIsPinnedAndIgnoresMemberOrder(t *testing.T) {
	members := []string{"gw-0", "gw-1", "gw-2"}
	cases := []struct {
		shard int
		want  string
	}{
		{0, "gw-1"}, {1, "gw-1"}, {2, "gw-1"}, {3, "gw-2"}, {511, "gw-0"}, {1023, "gw-0"},
	}
	reversed := slices.Clone(members)
	slices.Reverse(reversed)
	for _, c := range cases {
		if got := Assign(c.shard, members); got != c.want {
			t.Errorf("Assign(%d) = %q, want %q", c.shard, got, c.want)
		}
		if got := Assign(c.shard, reversed); got != c.want {
			t.Errorf("Assign(%d) with members reversed = %q, want %q", c.shard, got, c.want)
		}
	}
	if got := Assign(0, nil); got != "" {
		t.Errorf("Assign with no members = %q, want \"\"", got)
	}
}

func TestAssignMovesOnlyWhatMembershipChangesRequire(t *testing.T) {
	const shards = 1024
	cases := []struct {
		name          string
		before, after []string
		// every moved shard must go to one of these (a join) or come from one of these (a leave)
		joined, left []string
		minMoved     int
		maxMoved     int
	}{
		{"a third member joins: about 1/3 move, all to it",
			[]string{"gw-0", "gw-1"}, []string{"gw-0", "gw-1", "gw-2"}, []string{"gw-2"}, nil, 280, 400},
		{"a fourth member joins: about 1/4 move, all to it",
			[]string{"gw-0", "gw-1", "gw-2"}, []string{"gw-0", "gw-1", "gw-2", "gw-3"}, []string{"gw-3"}, nil, 200, 320},
		{"a member leaves: only its shards move",
			[]string{"gw-0", "gw-1", "gw-2", "gw-3"}, []string{"gw-0", "gw-1", "gw-3"}, nil, []string{"gw-2"}, 200, 320},
		{"same members: nothing moves",
			[]string{"gw-0", "gw-1", "gw-2"}, []string{"gw-2", "gw-0", "gw-1"}, nil, nil, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before, after := AssignAll(shards, c.before), AssignAll(shards, c.after)
			moved := 0
			for k := range shards {
				if before[k] == after[k] {
					continue
				}
				moved++
				if c.joined != nil && !slices.Contains(c.joined, after[k]) {
					t.Errorf("shard %d moved %s -> %s, not to the new member", k, before[k], after[k])
				}
				if c.left != nil && !slices.Contains(c.left, before[k]) {
					t.Errorf("shard %d moved %s -> %s though %s stayed", k, before[k], after[k], before[k])
				}
			}
			if moved < c.minMoved || moved > c.maxMoved {
				t.Errorf("%d of %d shards moved, want %d..%d", moved, shards, c.minMoved, c.maxMoved)
			}
		})
	}
}

func TestAssignBalancesShardsOverMembers(t *testing.T) {
	members := []string{"gw-0", "gw-1", "gw-2", "gw-3", "gw-4"}
	counts := map[string]int{}
	for _, m := range AssignAll(1024, members) {
		counts[m]++
	}
	for _, m := range members {
		if c := counts[m]; c < 1024/5*3/4 || c > 1024/5*5/4 {
			t.Errorf("%s holds %d of 1024 shards, want within 25%% of %d", m, c, 1024/5)
		}
	}
}
