package cluster

import (
	"log/slog"
	"testing"

	"github.com/redis/go-redis/v9"
)

func mustStore(t *testing.T, rdb redis.UniversalClient, opts Options) *Store {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := New(rdb, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// heldShards is what m believes it holds, shard -> epoch, read through HeldEpoch as the session
// layer reads it.
func heldShards(m *Member) map[int]int64 {
	held := map[int]int64{}
	for k := range m.s.Shards() {
		if e, ok := m.HeldEpoch(k); ok {
			held[k] = e
		}
	}
	return held
}
