package outbox

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"wagate/gateway/event"
	"wagate/internal/redistest"
)

// waitFor polls cond (in memory, not Redis) until it holds or a generous bound passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// Issue 19 #8: 200 appends blocked on a full outbox used to poll Redis every 25 ms each, and
// every ack woke all of them (~15k Redis commands/s). Now one poller looks for room and an ack
// wakes one waiter per entry it freed.
func TestBlockedAppendsWaitOnOnePollerAndAnAckWakesOnlyAsManyAsItFreed(t *testing.T) {
	b := redistest.Mini(t)
	const max, waiters = 10, 200
	o := newOutbox(t, b, Config{Max: max, AppendTimeout: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for v := int64(1); v <= max; v++ {
		if _, err := o.Append(ctx, testEvent("full", v, event.KindQR, "qr")); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, waiters)
	for i := range waiters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := o.Append(ctx, testEvent(fmt.Sprintf("s%d", i), 1, event.KindStatus, "connected"))
			errs <- err
		}()
	}
	waitFor(t, "every append to wait", func() bool { return o.waiting() == waiters })

	// While blocked: one XLEN per poller tick (25 ms, jittered down to 20 ms), not one per waiter.
	polls0, cmds0 := o.Counters().RoomChecks, b.Mini.CommandCount()
	time.Sleep(500 * time.Millisecond)
	polls, cmds := o.Counters().RoomChecks-polls0, int64(b.Mini.CommandCount()-cmds0)
	t.Logf("blocked: %d Redis commands, %d room checks in 500 ms with %d waiting appends", cmds, polls, waiters)
	if cmds > polls+2 || polls > 500/20+2 {
		t.Fatalf("%d Redis commands and %d room checks in 500 ms with %d blocked appends; want one command per poller tick", cmds, polls, waiters)
	}

	// An ack of 3 entries lets exactly 3 appends in, and costs Redis a few commands, not 200.
	got, err := o.ReadNew(ctx, 3)
	if err != nil || len(got) != 3 {
		t.Fatalf("read %d, %v", len(got), err)
	}
	cmds0, polls0 = b.Mini.CommandCount(), o.Counters().RoomChecks
	if err := o.Ack(ctx, got[0].ID, got[1].ID, got[2].ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "3 appends to get in", func() bool { return o.Counters().Appended == max+3 })
	time.Sleep(100 * time.Millisecond)
	if n := o.Counters().Appended; n != max+3 {
		t.Fatalf("%d appended after freeing 3; want %d (the bound holds)", n, max+3)
	}
	cmds, polls = int64(b.Mini.CommandCount()-cmds0), o.Counters().RoomChecks-polls0
	// The ack (MULTI, XACK, XDEL, EXEC), up to two commands per woken append (script, or
	// pipeline), the poller's ticks, and slack for a woken waiter racing the poller.
	t.Logf("freeing 3 entries: %d Redis commands (%d room checks meanwhile)", cmds, polls)
	if budget := 4 + 3*2 + polls + 10; cmds > budget {
		t.Fatalf("freeing 3 entries cost %d Redis commands with %d blocked appends; want at most %d", cmds, waiters, budget)
	}
	cancel()
	wg.Wait()
	close(errs)
	refused := 0
	for err := range errs {
		if err != nil {
			if !errors.Is(err, ErrFull) {
				t.Fatalf("a blocked append failed with %v; want ErrFull", err)
			}
			refused++
		}
	}
	if refused != waiters-3 {
		t.Fatalf("%d appends refused; want %d", refused, waiters-3)
	}
	if o.waiting() != 0 {
		t.Fatalf("%d waiters left queued after their appends returned", o.waiting())
	}
}
