package cluster

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// DefaultShards is the number of shards of an installation that does not choose one.
const DefaultShards = 1024

// ErrShardCount matches (errors.Is) a start with a shard count different from the installation's.
var ErrShardCount = errors.New("cluster: shard count differs from the installation's")

// Shard returns the shard of sessionID among shards (> 0): a stable hash (64-bit FNV-1a, then the
// splitmix64 finalizer so nearby ids spread over the low bits) modulo shards. The result must never
// change between releases: sessions would silently change owners. shards <= 0 panics.
func Shard(sessionID string, shards int) int {
	if shards <= 0 {
		panic("cluster: Shard with shards <= 0")
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(sessionID))
	return int(mix64(h.Sum64()) % uint64(shards))
}

// mix64 is splitmix64's finalizer: a bijection whose every output bit depends on every input bit.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// CheckShards stores the shard count at an installation's first start and refuses a later start
// with a different one: changing S moves almost every session to another shard, which needs a
// migration, not a restart.
func (s *Store) CheckShards(ctx context.Context) error {
	if _, err := s.rdb.SetNX(ctx, s.keys.shardCount, s.opts.Shards, 0).Result(); err != nil {
		return fmt.Errorf("cluster: store shard count: %w", err)
	}
	v, err := s.rdb.Get(ctx, s.keys.shardCount).Result()
	if err != nil {
		return fmt.Errorf("cluster: read shard count: %w", err)
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("cluster: shard count %q in %s is not a number: %w", v, s.keys.shardCount, err)
	}
	if n != s.opts.Shards {
		return fmt.Errorf("%w: this replica is configured with %d shards, the installation in Redis (%s) has %d; "+
			"set the shard count to %d (changing it needs a migration of every session)",
			ErrShardCount, s.opts.Shards, s.keys.shardCount, n, n)
	}
	return nil
}

// redisNil reports whether err is Redis's "no such key".
func redisNil(err error) bool { return errors.Is(err, redis.Nil) }
