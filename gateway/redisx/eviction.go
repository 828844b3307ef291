package redisx

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
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

// CheckEvictionPolicy reads the server's maxmemory-policy (CONFIG GET, or INFO memory where
// CONFIG is disabled, as on managed services) and refuses a policy that can evict the outbox,
// saying what to set. A server that answers neither (a miniredis test double, which never evicts)
// passes with a warning.
func (c *Conn) CheckEvictionPolicy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	policy, err := c.maxmemoryPolicy(ctx)
	if err != nil {
		c.log.Warn("redis: could not read maxmemory-policy; make sure it is noeviction (or volatile-*), or the outbox can be evicted",
			"addr", c.Addr, "err", err)
		return nil
	}
	if !EvictionSafe(policy) {
		return fmt.Errorf("%w: %s has maxmemory-policy %q; set `maxmemory-policy noeviction` (or a volatile-* policy) "+
			"in redis.conf or with CONFIG SET, or give the gateway its own Redis: %s would delete undelivered events under memory pressure",
			ErrEvictingPolicy, c.Addr, policy, policy)
	}
	c.log.Info("redis: maxmemory-policy keeps the outbox", "policy", policy)
	return nil
}

func (c *Conn) maxmemoryPolicy(ctx context.Context) (string, error) {
	vals, cerr := c.Client.ConfigGet(ctx, "maxmemory-policy").Result()
	if cerr == nil {
		if p, ok := vals["maxmemory-policy"]; ok && p != "" {
			return p, nil
		}
		cerr = errors.New("CONFIG GET maxmemory-policy answered nothing")
	}
	info, ierr := c.Client.Info(ctx, "memory").Result()
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
