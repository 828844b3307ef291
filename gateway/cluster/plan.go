package cluster

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// Move is what one replica should do about its shards next (Plan).
type Move struct {
	Claim    []int // shards assigned to me that nobody live holds
	HandOver []int // shards I hold that are assigned to another live member, at most the budget
}

// Plan decides, for the incarnation me (an id "<name>#<n>"), which shards to claim and which to
// hand over, given the live members' names and the live holder's incarnation id per shard (""
// when released, never claimed, or its holder is no longer live). Assignment is by name, so an
// earlier incarnation of the same replica that is still live keeps its shards until its lease
// ends or it leaves (a fenced replica Leaves before it rejoins). Assignment is sticky: a shard held by a live member stays there
// until that holder hands it over, at most budget shards per round (join/leave at a bounded rate);
// a free or orphaned shard is claimed only by its assigned member. Pure; Store.Table gives the
// input.
func Plan(shards int, me string, live []string, holders []string, budget int) Move {
	var mv Move
	name := NameOf(me)
	for k := range shards {
		target := Assign(k, live)
		cur := ""
		if k < len(holders) {
			cur = holders[k]
		}
		switch {
		case cur == "" && target == name:
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

// Table returns, per shard, the incarnation id of its live holder ("" when nobody live holds it),
// and the names of the live members: Plan's input, read in two round trips (not one snapshot; Plan's
// decisions are only intents, the claim scripts decide).
func (s *Store) Table(ctx context.Context) (holders []string, live []string, err error) {
	members, holders, err := s.View(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, m := range members {
		live = append(live, m.Name)
	}
	return holders, live, nil
}

// View returns the live members (with their advertised addresses) and, per shard, the incarnation
// id of its live holder ("" when nobody live holds it): Table's input, and what a replica routes
// requests by.
func (s *Store) View(ctx context.Context) (members []MemberInfo, holders []string, err error) {
	members, err = s.Live(ctx)
	if err != nil {
		return nil, nil, err
	}
	liveIDs := make(map[string]bool, len(members))
	for _, m := range members {
		liveIDs[m.ID] = true
	}
	all, err := s.rdb.HGetAll(ctx, s.keys.holders).Result()
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: read shard holders: %w", err)
	}
	holders = make([]string, s.opts.Shards)
	for f, id := range all {
		k, err := strconv.Atoi(f)
		if err != nil || k < 0 || k >= s.opts.Shards || !liveIDs[id] {
			continue
		}
		holders[k] = id
	}
	return members, holders, nil
}
