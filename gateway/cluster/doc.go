// Package cluster owns who holds which WhatsApp session when several gateway replicas share one
// Redis: sessions hash into a fixed number of shards (Shard), each replica is a member with a lease
// (Store.Join, Member.Run), a shard is held by one member under an epoch that every claim raises
// (Member.Claim, Renew, Release, Bump), and that epoch is the fencing token callers check before
// acting for a shard (Store.Fence) and put into event versions (Version). Which member should hold
// a shard is a pure function of the live members (Assign, rendezvous hashing), and what one
// replica should claim or hand over next is another (Plan, fed by Store.Table).
//
// Correctness comes from the epochs, liveness from the leases: a lease never guarantees a single
// actor (a paused process outlives it), so every write a replica makes for a session carries
// Version(epoch, seq), and the places those writes land (Laravel's version guard, the L2 cache,
// outbox coalescing) reject an older epoch. All state lives under one Redis hash tag, changed only
// by Lua scripts that read the time from Redis TIME, so every lease is measured on one clock.
//
// The package stands alone: routing, handoff and the wiring into the session layer are described
// in docs/cluster.md.
package cluster
