package redistest

import (
	"context"
	"testing"
)

func TestEachBackendAnswersPing(t *testing.T) {
	Each(t, func(t *testing.T, b *Backend) {
		c := b.Client(t)
		if err := c.Ping(context.Background()).Err(); err != nil {
			t.Fatalf("%s: PING: %v", b.Name, err)
		}
	})
}

func TestRealServerKeepsDataAcrossRestartWithAOF(t *testing.T) {
	s := StartServer(t, Options{AppendOnly: true})
	b := &Backend{Name: "redis-server", Addr: s.Addr, Real: s}
	ctx := context.Background()
	c := b.Client(t)
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("after SIGKILL and restart: got %q, %v; want v", got, err)
	}
}
