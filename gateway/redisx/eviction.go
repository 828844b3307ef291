package redisx

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrEvictingPolicy matches (errors.Is) a Redis whose maxmemory-policy may evict the outbox.
var ErrEvictingPolicy = errors.New("redis: maxmemory-policy can evict the outbox")

// EvictionSafe reports whether Redis's maxmemory-policy keeps the outbox: noeviction refuses
// writes when memory is full (the outbox then fails loudly), a volatile-* policy evicts only keys
// with a TTL (the outbox stream has none). Every allkeys-* policy may evict the outbox stream and
// its undelivered events like a cache key.
func EvictionSafe(policy string) bool {
	p := strings.ToLower(strings.TrimSpace(policy))
	return p == "noeviction" || strings.HasPrefix(p, "volatile-")
}

// EvictingPolicyError is the error for a Redis at addr whose maxmemory-policy (policy) can evict
// the outbox: it matches ErrEvictingPolicy and says what to set. The start-up check returns it,
// and the outbox's keeper logs and reports it when the policy is changed at runtime.
func EvictingPolicyError(addr, policy string) error {
	return fmt.Errorf("%w: %s has maxmemory-policy %q; set `maxmemory-policy noeviction` (or a volatile-* policy) "+
		"in redis.conf or with CONFIG SET, or give the gateway its own Redis: %s would delete undelivered events under memory pressure",
		ErrEvictingPolicy, addr, policy, policy)
}

// CheckEvictionPolicy reads the server's maxmemory-policy (CONFIG GET, or INFO memory where
// CONFIG is disabled, as on managed services) and refuses a policy that can evict the outbox,
// saying what to set. A server that answers neither (a miniredis test double, which never evicts)
// passes with a warning. A running gateway keeps checking (outbox.Config.PolicyCheck).
func (c *Conn) CheckEvictionPolicy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	policy, err := MaxmemoryPolicy(ctx, c.Client)
	if err != nil {
		c.log.Warn("redis: could not read maxmemory-policy; make sure it is noeviction (or volatile-*), or the outbox can be evicted",
			"addr", c.Addr, "err", err)
		return nil
	}
	if !EvictionSafe(policy) {
		return EvictingPolicyError(c.Addr, policy)
	}
	c.log.Info("redis: maxmemory-policy keeps the outbox", "policy", policy)
	return nil
}

// MaxmemoryPolicy reads the maxmemory-policy of the server rdb talks to: CONFIG GET, or INFO
// memory where CONFIG is disabled (managed services). It fails when the server answers neither
// (miniredis has no CONFIG and no maxmemory_policy in its INFO).
func MaxmemoryPolicy(ctx context.Context, rdb redis.UniversalClient) (string, error) {
	vals, cerr := rdb.ConfigGet(ctx, "maxmemory-policy").Result()
	if cerr == nil {
		if p, ok := vals["maxmemory-policy"]; ok && p != "" {
			return p, nil
		}
		cerr = errors.New("CONFIG GET maxmemory-policy answered nothing")
	}
	info, ierr := rdb.Info(ctx, "memory").Result()
	if ierr == nil {
		for line := range strings.SplitSeq(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "maxmemory_policy:"); ok && v != "" {
				return v, nil
			}
		}
		ierr = errors.New("INFO memory has no maxmemory_policy")
	}
	return "", fmt.Errorf("redisx: read maxmemory-policy: %w; %w", cerr, ierr)
}
