package cluster

import (
	"encoding/binary"
	"hash/fnv"
)

// Assign returns which of members should hold shard: the member with the highest weight
// hash(member, shard) (rendezvous, or highest-random-weight, hashing), ties broken by the smaller
// name. It is "" when members is empty. The order of members does not matter; adding a member
// takes over only the shards it wins (about 1/N of them), removing one moves only the shards it
// held. Members are passed by their stable names (the gateway id), not by incarnation, so a
// restarted replica is assigned the shards it held before.
func Assign(shard int, members []string) string {
	best, bestW := "", uint64(0)
	for _, m := range members {
		w := weight(m, shard)
		if best == "" || w > bestW || (w == bestW && m < best) {
			best, bestW = m, w
		}
	}
	return best
}

// AssignAll returns Assign for every shard in [0, shards).
func AssignAll(shards int, members []string) []string {
	out := make([]string, shards)
	for k := range out {
		out[k] = Assign(k, members)
	}
	return out
}

// weight is the rendezvous weight of member for shard: FNV-1a over the name, a 0 separator and the
// shard as 8 big-endian bytes, then the splitmix64 finalizer. Like Shard it must never change.
func weight(member string, shard int) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(member))
	var b [9]byte
	binary.BigEndian.PutUint64(b[1:], uint64(shard))
	_, _ = h.Write(b[:])
	return mix64(h.Sum64())
}
