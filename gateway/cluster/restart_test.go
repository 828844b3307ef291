package cluster

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// A replica stopped for a restart (LeaveReturning) keeps its shards for its own name: no other
// replica can claim them while its grace lasts, its next incarnation claims them at a higher
// epoch, and once it is back the wait is over. Table shows the shards as waiting meanwhile.
func TestShardsLeftForARestartWaitOnlyForTheSameReplica(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	a, b := w.join(t, "gw-a"), w.join(t, "gw-b")
	e1 := mustClaim(t, a, 1)
	mustClaim(t, b, 2)
	if err := a.LeaveReturning(ctx, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if a.Err() == nil {
		t.Fatal("a member that left is not fenced")
	}
	if _, err := b.Claim(ctx, 1, 0); !errors.Is(err, ErrHeld) {
		t.Fatalf("gw-b claimed gw-a's shard during gw-a's restart grace: %v, want ErrHeld", err)
	}
	tb, err := w.s.Table(ctx)
	if err != nil || tb.Holders[1] != "" || tb.Returning[1] != "gw-a" || tb.Returning[2] != "" || !slices.Equal(tb.Live, []string{"gw-b"}) {
		t.Fatalf("Table = %+v, %v; want shard 1 free and waiting for gw-a, live [gw-b]", tb, err)
	}
	if _, snap, err := w.s.Snapshot(ctx); err != nil || snap[1].Holder != "" || snap[1].WaitingFor != "gw-a" || snap[2].WaitingFor != "" {
		t.Fatalf("Snapshot = %+v, %v; want shard 1 held by nobody, waiting for gw-a (GET /cluster)", snap[:3], err)
	}

	w.advance(2 * time.Second)
	a2 := w.join(t, "gw-a")
	if tb, err := w.s.Table(ctx); err != nil || tb.Returning[1] != "" || len(tb.Live) != 2 {
		t.Fatalf("after gw-a joined again: Table = %+v, %v; want nothing waiting, two live", tb, err)
	}
	if _, snap, err := w.s.Snapshot(ctx); err != nil || snap[1].WaitingFor != "" {
		t.Fatalf("after gw-a joined again: Snapshot = %+v, %v; want shard 1 waiting for nobody", snap[:3], err)
	}
	if e2 := mustClaim(t, a2, 1); e2 <= e1 {
		t.Fatalf("the returned gw-a claimed shard 1 at epoch %d, not above %d", e2, e1)
	}
}

// A replica that does not come back within its grace (scaled down) leaves its shards to the
// others once the grace is over; a grace of zero is a plain Leave (the shards are free at once).
func TestShardsLeftForARestartAreAnyonesAfterTheGrace(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	a, b, c := w.join(t, "gw-a"), w.join(t, "gw-b"), w.join(t, "gw-c")
	mustClaim(t, a, 1)
	mustClaim(t, c, 3)
	if err := a.LeaveReturning(ctx, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.LeaveReturning(ctx, 0); err != nil {
		t.Fatal(err)
	}
	mustClaim(t, b, 3) // no grace: free at once
	w.advance(4 * time.Second)
	if _, err := b.Claim(ctx, 1, 0); !errors.Is(err, ErrHeld) {
		t.Fatalf("claim 1 s before the grace ends: %v, want ErrHeld", err)
	}
	w.advance(1001 * time.Millisecond)
	if tb, err := w.s.Table(ctx); err != nil || tb.Returning[1] != "" {
		t.Fatalf("after the grace: Table = %+v, %v; want shard 1 waiting for nobody", tb, err)
	}
	mustClaim(t, b, 1)
}
