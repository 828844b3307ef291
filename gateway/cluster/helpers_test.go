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
