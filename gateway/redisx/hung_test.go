package redisx

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"wagate/internal/redistest"
)

// Issue 19 #11: go-redis ignores a caller's deadline on the socket unless told otherwise, so an
// append deadline or a write-through bound waited out the client's own 3 s read timeout instead.
func TestACallersDeadlineCutsACallToAHungRedisShort(t *testing.T) {
	b := redistest.Mini(t)
	p := redistest.StartFreezingProxy(t, b.Addr)
	c, err := Open(context.Background(), "redis://"+p.Addr(), 0, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p.Freeze()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = c.Client.Get(ctx, "k").Err()
	took := time.Since(start)
	if err == nil {
		t.Fatal("a hung Redis answered")
	}
	// The client's own read timeout is 3 s: a call that lasts more than a second ignored the
	// caller's 100 ms deadline.
	if took > time.Second {
		t.Fatalf("the call to a hung Redis took %s with a 100 ms deadline", took)
	}
}
