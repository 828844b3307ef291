package cluster

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// Move is what one replica should do about its shards next (Plan).
type Move struct {
	Claim    []int // shards assigned to me that nobody live holds and that wait for no other replica
	HandOver []int // shards I hold that are assigned to another live member, at most the budget
}

// Table is the cluster as one rebalancing round sees it (Store.Table): Plan's input.
type Table struct {
	Members []MemberInfo // the live members
	Live    []string     // their names
	// Holders is, per shard, its live holder's incarnation id ("" when released, never claimed,
	// or its holder is no longer live).
	Holders []string
	// Returning is, per shard, the name of the replica it waits for ("" for none): its holder
	// left with a restart grace (LeaveReturning) that has not ended, and no incarnation of that
	// name is live.
	Returning []string
}

// Plan decides, for the incarnation me (an id "<name>#<n>"), which shards to claim and which to
// hand over, given the table. Assignment is by name, so an earlier incarnation of the same replica
// that is still live keeps its shards until its lease ends or it leaves (a fenced replica Leaves
// before it rejoins). Assignment is sticky: a shard held by a live member stays there until that
// holder hands it over, at most budget shards per round (join/leave at a bounded rate); a free or
// orphaned shard is claimed only by its assigned member, and not while it waits for another
// replica's return (a rolling update: the restarted replica takes its own shards back, nobody
// moves them meanwhile). Pure; Store.Table gives the input.
func Plan(shards int, me string, t Table, budget int) Move {
	var mv Move
	name := NameOf(me)
	for k := range shards {
		target := Assign(k, t.Live)
		cur, waits := "", ""
		if k < len(t.Holders) {
			cur = t.Holders[k]
		}
		if k < len(t.Returning) {
			waits = t.Returning[k]
		}
		switch {
		case cur == "" && target == name && (waits == "" || waits == name):
			mv.Claim = append(mv.Claim, k)
		case cur == me && target != name && target != "" && len(mv.HandOver) < budget:
			mv.HandOver = append(mv.HandOver, k)
		}
	}
	return mv
}

// NameOf returns the replica name of an incarnation id "<name>#<n>".
func NameOf(id string) string {
	if i := strings.LastIndexByte(id, '#'); i >= 0 {
		return id[:i]
	}
	return id
}

// Table reads Plan's input in a few round trips (not one snapshot: Plan's decisions are only
// intents, the claim scripts decide). The returning replicas are read first, so a replica that
// joins meanwhile (ending its grace) is seen live rather than neither live nor returning.
func (s *Store) Table(ctx context.Context) (Table, error) {
	returning, err := s.returning(ctx)
	if err != nil {
		return Table{}, err
	}
	members, err := s.Live(ctx)
	if err != nil {
		return Table{}, err
	}
	t := Table{Members: members, Holders: make([]string, s.opts.Shards), Returning: make([]string, s.opts.Shards)}
	liveIDs := make(map[string]bool, len(members))
	liveNames := make(map[string]bool, len(members))
	for _, m := range members {
		liveIDs[m.ID] = true
		liveNames[m.Name] = true
		t.Live = append(t.Live, m.Name)
	}
	all, err := s.rdb.HGetAll(ctx, s.keys.holders).Result()
	if err != nil {
		return Table{}, fmt.Errorf("cluster: read shard holders: %w", err)
	}
	for f, id := range all {
		k, err := strconv.Atoi(f)
		if err != nil || k < 0 || k >= s.opts.Shards {
			continue
		}
		switch name := NameOf(id); {
		case liveIDs[id]:
			t.Holders[k] = id
		case returning[name] && !liveNames[name]:
			t.Returning[k] = name
		}
	}
	return t, nil
}

// View returns the live members (with their advertised addresses) and, per shard, the incarnation
// id of its live holder ("" when nobody live holds it): what a replica routes requests by.
func (s *Store) View(ctx context.Context) (members []MemberInfo, holders []string, err error) {
	t, err := s.Table(ctx)
	if err != nil {
		return nil, nil, err
	}
	return t.Members, t.Holders, nil
}
