package outbox

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"wagate/gateway/event"
	"wagate/internal/redistest"
)

// Who may try Redis at once and who queues behind the appends already waiting for room.
func TestAnAppendQueuesBehindTheWaitersOfItsPriorityOrAHigherOne(t *testing.T) {
	const high, normal = event.PriorityHigh, event.PriorityNormal
	cases := []struct {
		name                       string
		prio                       event.Priority
		waitingHigh, waitingNormal int
		tryAtOnce                  bool
	}{
		{"nobody waits: a QR code tries", normal, 0, 0, true},
		{"nobody waits: a final state tries", high, 0, 0, true},
		{"a QR code behind earlier QR codes", normal, 0, 3, false},
		{"a QR code behind a waiting final state", normal, 1, 0, false},
		{"a final state passes waiting QR codes", high, 0, 5, true},
		{"a final state behind an earlier final state", high, 1, 5, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := firstTry(c.prio, c.waitingHigh, c.waitingNormal); got != c.tryAtOnce {
				t.Fatalf("firstTry(%v, high %d, normal %d) = %v; want %v", c.prio, c.waitingHigh, c.waitingNormal, got, c.tryAtOnce)
			}
		})
	}
}

// Which waiters room wakes: priority states first, oldest first within a priority; a woken
// waiter that lost the race queues again at the head of its priority.
func TestRoomWakesPriorityStatesFirstThenTheOldest(t *testing.T) {
	type waiter struct {
		name string
		prio event.Priority
		head bool
	}
	qr := func(n string) waiter { return waiter{n, event.PriorityNormal, false} }
	final := func(n string) waiter { return waiter{n, event.PriorityHigh, false} }
	cases := []struct {
		name    string
		waiters []waiter // queued in this order
		room    int64
		woken   []string
	}{
		{"no room wakes nobody", []waiter{qr("q1"), final("c1")}, 0, nil},
		{"one slot goes to the final state that queued last", []waiter{qr("q1"), qr("q2"), final("c1")}, 1, []string{"c1"}},
		{"final states oldest first, then QR codes oldest first", []waiter{qr("q1"), final("c1"), qr("q2"), final("c2")}, 3, []string{"c1", "c2", "q1"}},
		{"more room than waiters wakes them all", []waiter{qr("q1"), final("c1")}, 10, []string{"c1", "q1"}},
		{"a waiter that lost the race is first of its priority again", []waiter{qr("q1"), {"q0", event.PriorityNormal, true}, final("c1")}, 2, []string{"c1", "q0"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var q roomQueue
			names := map[chan struct{}]string{}
			for _, w := range c.waiters {
				ch := make(chan struct{})
				names[ch] = w.name
				q.add(ch, w.prio, w.head)
			}
			var got []string
			for _, ch := range q.take(c.room) {
				got = append(got, names[ch])
			}
			if !slices.Equal(got, c.woken) {
				t.Fatalf("woke %v; want %v", got, c.woken)
			}
			if left := len(c.waiters) - len(got); q.len() != left {
				t.Fatalf("%d waiters left; want %d", q.len(), left)
			}
		})
	}
}

// fillWith appends n QR codes of session "full" to o.
func fillWith(t *testing.T, o *Outbox, n int64) {
	t.Helper()
	for v := int64(1); v <= n; v++ {
		if _, err := o.Append(context.Background(), testEvent("full", v, event.KindQR, "qr")); err != nil {
			t.Fatal(err)
		}
	}
}

// Issue 19 #4: a full outbox woke its waiting appends oldest first whatever they carried, so a
// session's connected or logged_out waited behind every QR code queued before it, and its 5 s
// deadline often refused it while the QR codes got the room. Room that returns goes to the final
// state first.
func TestRoomThatReturnsGoesToAFinalStateBeforeEarlierQRCodes(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		const max, codes = 3, 5
		o := newOutbox(t, b, Config{Max: max, AppendTimeout: 3 * time.Second, RoomPoll: time.Hour})
		fillWith(t, o, max)
		done := map[string]chan error{}
		appendAsync := func(ev event.Event) {
			ch := make(chan error, 1)
			done[ev.SessionID] = ch
			go func() { _, err := o.Append(ctx, ev); ch <- err }()
		}
		for i := range codes {
			appendAsync(testEvent(fmt.Sprintf("pairing%d", i), 1, event.KindQR, "qr"))
			waitFor(t, "the QR code to wait", func() bool { return o.waiting() == i+1 })
		}
		appendAsync(testEvent("final", 7, event.KindStatus, "logged_out"))
		waitFor(t, "the final state to wait", func() bool { return o.waiting() == codes+1 })

		// Laravel took one entry: one slot.
		got, err := o.ReadNew(ctx, 1)
		if err != nil || len(got) != 1 {
			t.Fatalf("read %d, %v", len(got), err)
		}
		if err := o.Ack(ctx, got[0].ID); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done["final"]:
			if err != nil {
				t.Fatalf("the final state was refused: %v", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("the freed slot did not go to the waiting final state")
		}
		if n := o.waiting(); n != codes {
			t.Fatalf("%d appends wait; want the %d QR codes", n, codes)
		}
	})
}

// An append arriving while a final state waits does not take the room that freed up between the
// poller's ticks (another gateway acknowledged an entry): it queues behind it.
func TestAFreshQRCodeDoesNotTakeRoomAWaitingFinalStateIsOwed(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		const max = 2
		o := newOutbox(t, b, Config{Max: max, AppendTimeout: 2 * time.Second, RoomPoll: 300 * time.Millisecond})
		fillWith(t, o, max)
		final := make(chan error, 1)
		go func() { _, err := o.Append(ctx, testEvent("final", 9, event.KindStatus, "connected")); final <- err }()
		waitFor(t, "the final state to wait", func() bool { return o.waiting() == 1 })

		// Another gateway delivered an entry: room, which this outbox learns at its next tick.
		c := b.Client(t)
		ids, err := c.XRange(ctx, DefaultStream, "-", "+").Result()
		if err != nil || len(ids) != max {
			t.Fatalf("stream: %d entries, %v", len(ids), err)
		}
		if err := c.XDel(ctx, DefaultStream, ids[0].ID).Err(); err != nil {
			t.Fatal(err)
		}
		qr := make(chan error, 1)
		go func() { _, err := o.Append(ctx, testEvent("pairing", 1, event.KindQR, "qr")); qr <- err }()

		if err := <-final; err != nil {
			t.Fatalf("the final state was refused: %v", err)
		}
		if err := <-qr; !errors.Is(err, ErrFull) {
			t.Fatalf("the QR code that arrived later: %v; want ErrFull (no room left after the final state)", err)
		}
		entries, err := c.XRange(ctx, DefaultStream, "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		if last := entries[len(entries)-1].Values["sid"]; len(entries) != max || last != "final" {
			t.Fatalf("stream holds %d entries, the last of session %v; want %d, the last the final state", len(entries), last, max)
		}
	})
}

// An append its caller withdraws while it waits for room (the session superseded the QR code it
// carried) is not a refusal: not counted in AppendFailed, its error matches context.Canceled.
func TestAnAppendWithdrawnByItsCallerIsNotCountedAsRefused(t *testing.T) {
	b := redistest.Mini(t)
	o := newOutbox(t, b, Config{Max: 1, AppendTimeout: time.Minute, RoomPoll: time.Hour})
	fillWith(t, o, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := o.Append(ctx, testEvent("pairing", 1, event.KindQR, "qr")); done <- err }()
	waitFor(t, "the QR code to wait", func() bool { return o.waiting() == 1 })
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("withdrawn append: %v; want context.Canceled", err)
	}
	if n := o.Counters().AppendFailed; n != 0 {
		t.Fatalf("AppendFailed %d after a withdrawn append; want 0", n)
	}
	if o.waiting() != 0 {
		t.Fatalf("%d waiters left", o.waiting())
	}
}
