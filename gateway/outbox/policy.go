package outbox

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"wagate/gateway/redisx"
)

// Watching Redis's eviction policy while the gateway runs. Batch mode refuses at start a Redis
// whose maxmemory-policy can evict the outbox (redisx.CheckEvictionPolicy), but an operator can
// switch it at runtime (CONFIG SET maxmemory-policy allkeys-lru): from then on, memory pressure
// deletes the outbox stream and its undelivered events like a cache key. The keeper reads the
// policy every PolicyCheck; a change to an evicting policy is logged at ERROR with what to set,
// EvictionRisk reports it (the gateway's /readyz check and the wagate_redis_eviction_policy_unsafe
// gauge) until the policy is safe again, which is logged too. A server that does not tell its
// policy (miniredis) is never taken for evicting; a failed read keeps the last policy read.

// DefaultPolicyCheck is how often the keeper reads Redis's maxmemory-policy.
const DefaultPolicyCheck = 5 * time.Second

// policyCheckTimeout bounds one read of the policy.
const policyCheckTimeout = 2 * time.Second

// policyState is the last maxmemory-policy the keeper read (Outbox.pol, under polMu).
type policyState struct {
	policy string // "" until a read succeeded
	unsafe bool   // policy can evict the outbox
}

// policyNews is what a policy read changes: the state to keep, and what to say about it.
type policyNews int

const (
	policyUnchanged policyNews = iota // nothing to log
	policyEvicting                    // the policy became one that can evict the outbox: ERROR
	policySafeAgain                   // an evicting policy was replaced by a safe one: INFO
)

// readPolicy decides what a read of policy (read: whether the read succeeded) means after prev:
// the state to keep and the news to log. Pure; table-tested.
func readPolicy(prev policyState, policy string, read bool) (policyState, policyNews) {
	if !read {
		return prev, policyUnchanged
	}
	next := policyState{policy: policy, unsafe: !redisx.EvictionSafe(policy)}
	switch {
	case next.unsafe && (!prev.unsafe || prev.policy != policy):
		return next, policyEvicting
	case !next.unsafe && prev.unsafe:
		return next, policySafeAgain
	}
	return next, policyUnchanged
}

// CheckEvictionPolicy reads Redis's maxmemory-policy now, remembers it and logs a change (the
// keeper calls it every PolicyCheck). It returns EvictionRisk's answer, or the read's error.
func (o *Outbox) CheckEvictionPolicy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, policyCheckTimeout)
	defer cancel()
	policy, err := redisx.MaxmemoryPolicy(ctx, o.rdb)
	o.polMu.Lock()
	prev := o.pol
	next, news := readPolicy(prev, policy, err == nil)
	o.pol = next
	o.polMu.Unlock()
	o.policyUnsafe.Store(next.unsafe)
	switch news {
	case policyEvicting:
		o.log.Error("outbox: Redis's maxmemory-policy can now evict the outbox: undelivered events are at risk under memory pressure",
			"policy", policy, "previous_policy", prev.policy, "err", redisx.EvictingPolicyError(o.redisAddr(), policy))
	case policySafeAgain:
		o.log.Info("outbox: Redis's maxmemory-policy keeps the outbox again", "policy", policy, "previous_policy", prev.policy)
	}
	if err != nil {
		return err
	}
	return o.EvictionRisk()
}

// EvictionRisk returns an error matching redisx.ErrEvictingPolicy, saying what to set, while the
// last maxmemory-policy read can evict the outbox; nil otherwise (also before any read, and for a
// server that does not tell its policy). It does not query Redis.
func (o *Outbox) EvictionRisk() error {
	o.polMu.Lock()
	p := o.pol
	o.polMu.Unlock()
	if !p.unsafe {
		return nil
	}
	return redisx.EvictingPolicyError(o.redisAddr(), p.policy)
}

// EvictionPolicyUnsafe reports whether the last maxmemory-policy read can evict the outbox.
func (o *Outbox) EvictionPolicyUnsafe() bool { return o.policyUnsafe.Load() }

// redisAddr names the Redis server in messages (its address, never credentials).
func (o *Outbox) redisAddr() string {
	if c, ok := o.rdb.(interface{ Options() *redis.Options }); ok {
		return c.Options().Addr
	}
	return "Redis"
}
