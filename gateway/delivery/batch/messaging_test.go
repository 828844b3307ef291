package batch

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"wagate/gateway/event"
	"wagate/gateway/laravel"
	"wagate/gateway/outbox"
)

// messagingEntry is the outbox entry of message (or receipt) number seq of a session, in chat.
func messagingEntry(kind event.Kind, sid, chat string, seq int64) outbox.Entry {
	id := fmt.Sprintf("%s-%s-%d", sid, kind, seq)
	msgID := fmt.Sprintf("WAID-%s-%d", sid, seq)
	ev := event.Event{ID: id, SessionID: sid, Kind: kind, Payload: msgID, Version: seq, Time: time.Unix(1_700_000_000, 0)}
	switch kind {
	case event.KindMessage:
		ev.Message = &laravel.MessageItem{SessionID: sid, MessageID: msgID, Chat: chat, Sender: chat, Type: laravel.MessageText,
			Text: "hello " + msgID, Sequence: seq}
	case event.KindReceipt:
		ev.Receipt = &laravel.ReceiptItem{SessionID: sid, MessageID: msgID, Chat: chat, Sender: chat, Status: laravel.ReceiptRead, Sequence: seq}
	}
	return outbox.Entry{ID: fmt.Sprintf("1-%s", id), Event: ev}
}

// sequences lists the session and sequence of each item of a batch, in body order.
func sequences(b *Batch) []string {
	out := make([]string, len(b.Items))
	for i, it := range b.Items {
		out[i] = fmt.Sprintf("%s/%d", it.Winner.Event.SessionID, it.Winner.Event.Version)
	}
	return out
}

var messagingKinds = []event.Kind{event.KindMessage, event.KindReceipt}

// Every message and every receipt is kept: several of one session, even of one chat, wait side by
// side, none is acknowledged as superseded, and a batch carries all of them in sequence order.
func TestMessagesAndReceiptsAreNeverCoalesced(t *testing.T) {
	for _, kind := range messagingKinds {
		t.Run(string(kind), func(t *testing.T) {
			c := NewCoalescer(50, 5*time.Second, 50*time.Millisecond)
			now := time.Unix(100, 0)
			for _, e := range []outbox.Entry{
				messagingEntry(kind, "s1", "chat-a", 3), messagingEntry(kind, "s2", "chat-b", 1),
				messagingEntry(kind, "s1", "chat-a", 1), messagingEntry(kind, "s1", "chat-a", 2),
			} {
				if superseded, ok := c.Add(e, now); ok {
					t.Fatalf("%s superseded %s: a %s is never coalesced", e.Event.ID, superseded.Event.ID, kind)
				}
			}
			if c.Waiting(kind) != 4 || c.Coalesced() != 0 {
				t.Fatalf("waiting %d, coalesced %d; want 4 and 0", c.Waiting(kind), c.Coalesced())
			}
			bs := c.TakeAll(TriggerTime)
			if len(bs) != 1 || bs[0].Kind != kind {
				t.Fatalf("batches %+v; want one %s batch", bs, kind)
			}
			if got, want := sequences(bs[0]), []string{"s1/1", "s1/2", "s1/3", "s2/1"}; !slices.Equal(got, want) {
				t.Fatalf("batch carries %v; want %v (every item, by session then sequence)", got, want)
			}
		})
	}
}

// The same outbox entry read twice (a claim racing a read) is one item, and nothing is
// acknowledged for it; the same event appended twice (re-driven twice) is one item, and the
// second entry is acknowledged (the first stands for it).
func TestAMessageReadOrAppendedTwiceIsOneItem(t *testing.T) {
	c := NewCoalescer(50, 5*time.Second, 0)
	now := time.Unix(100, 0)
	e := messagingEntry(event.KindMessage, "s1", "chat-a", 1)
	c.Add(e, now)
	if _, ok := c.Add(e, now); ok {
		t.Fatal("the same entry read twice was acknowledged as superseded: its only copy would be lost")
	}
	again := e
	again.ID = "2-redriven"
	if superseded, ok := c.Add(again, now); !ok || superseded.ID != again.ID {
		t.Fatalf("the re-appended copy: superseded %v %v; want it acknowledged", superseded.ID, ok)
	}
	if c.Waiting(event.KindMessage) != 1 {
		t.Fatalf("waiting %d; want 1", c.Waiting(event.KindMessage))
	}
}

// Chaos seed 1 schedule 18 (-kinds redis-evict): a customer's message applied twice, sent twice in
// one batch. The journal's replay appended a message Redis had refused to take (its row's event),
// an evicting Redis took its once key, and WhatsApp's redelivery of the message, under a new
// sequence and event id, became a second entry. Two entries of one item wait as one: the higher
// version stands for both and the other is acknowledged; other items are never coalesced.
func TestTwoEntriesOfOneItemUnderDifferentEventsWaitAsOne(t *testing.T) {
	redelivered := func(e outbox.Entry, seq int64) outbox.Entry {
		ev := e.Event
		ev.ID, ev.Version = fmt.Sprintf("%s-%s-%d", ev.SessionID, ev.Kind, seq), seq
		return outbox.Entry{ID: fmt.Sprintf("2-%s", ev.ID), Event: ev}
	}
	nextStatus := func(e outbox.Entry, seq int64) outbox.Entry {
		e = redelivered(e, seq)
		r := *e.Event.Receipt
		r.Status = laravel.ReceiptPlayed
		e.Event.Receipt = &r
		return e
	}
	msg := messagingEntry(event.KindMessage, "s1", "chat-a", 1)
	rcpt := messagingEntry(event.KindReceipt, "s1", "chat-a", 1)
	for _, tc := range []struct {
		name        string
		first, then outbox.Entry
		wantWaiting int
	}{
		{"a message redelivered under a new event", msg, redelivered(msg, 7), 1},
		{"a receipt redelivered under a new event", rcpt, redelivered(rcpt, 7), 1},
		{"the next status of a receipt", rcpt, nextStatus(rcpt, 7), 2},
		{"another message of the chat", msg, messagingEntry(event.KindMessage, "s1", "chat-a", 2), 2},
		{"the same message id on another session", msg, messagingEntry(event.KindMessage, "s2", "chat-a", 1), 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCoalescer(50, 5*time.Second, 0)
			now := time.Unix(100, 0)
			c.Add(tc.first, now)
			superseded, ok := c.Add(tc.then, now)
			kind := tc.first.Event.Kind
			if got := c.Waiting(kind); got != tc.wantWaiting {
				t.Fatalf("waiting %d; want %d", got, tc.wantWaiting)
			}
			if tc.wantWaiting == 1 && (!ok || superseded.ID != tc.first.ID) {
				t.Fatalf("superseded %q %v; want the older entry %s acknowledged", superseded.ID, ok, tc.first.ID)
			}
			if tc.wantWaiting == 2 && ok {
				t.Fatalf("%s superseded %s: different items are never coalesced", tc.then.Event.ID, superseded.Event.ID)
			}
			bs := c.TakeAll(TriggerTime)
			if n := len(bs[0].Items); len(bs) != 1 || n != tc.wantWaiting {
				t.Fatalf("batches %d with %d items; want one with %d", len(bs), n, tc.wantWaiting)
			}
		})
	}
}

// Messages and receipts are flushed on their own interval (1 s by default), not on the 5 s of QR
// codes and statuses, and that flush leaves the statuses waiting for theirs.
func TestMessagesFlushOnTheirOwnIntervalWithoutTakingStatusesAlong(t *testing.T) {
	for _, kind := range messagingKinds {
		t.Run(string(kind), func(t *testing.T) {
			c := NewCoalescer(50, 5*time.Second, 50*time.Millisecond)
			t0 := time.Unix(100, 0)
			c.Add(entry("st-1", "s9", 1, event.KindStatus, event.PriorityNormal), t0)
			c.Add(messagingEntry(kind, "s1", "chat-a", 1), t0)
			if got := c.Deadline(); !got.Equal(t0.Add(DefaultMessageInterval)) {
				t.Fatalf("deadline %v; want the message interval after the message (%v)", got, t0.Add(DefaultMessageInterval))
			}
			if _, due := c.Due(t0.Add(DefaultMessageInterval - time.Millisecond)); due {
				t.Fatal("due before the message interval")
			}
			trig, due := c.Due(t0.Add(DefaultMessageInterval))
			if !due || trig != TriggerTime {
				t.Fatalf("Due = %q %v at the message interval; want time", trig, due)
			}
			bs := c.TakeDue(t0.Add(DefaultMessageInterval), trig)
			if len(bs) != 1 || bs[0].Kind != kind {
				t.Fatalf("took %d batches; want only the %s batch", len(bs), kind)
			}
			if c.Waiting(event.KindStatus) != 1 {
				t.Fatal("the status went along with the messages; it waits for its own interval")
			}
			if got := c.Deadline(); !got.Equal(t0.Add(5 * time.Second)) {
				t.Fatalf("deadline %v; want the status's own (%v)", got, t0.Add(5*time.Second))
			}
		})
	}
}

// SetMessageInterval changes the interval of messages and receipts only.
func TestTheMessageIntervalIsASetting(t *testing.T) {
	c := NewCoalescer(50, 5*time.Second, 0)
	c.SetMessageInterval(200 * time.Millisecond)
	t0 := time.Unix(100, 0)
	c.Add(messagingEntry(event.KindMessage, "s1", "chat-a", 1), t0)
	if trig, due := c.Due(t0.Add(200 * time.Millisecond)); !due || trig != TriggerTime {
		t.Fatalf("Due = %q %v at 200 ms; want time", trig, due)
	}
	if err := (Config{MessageInterval: -time.Second}).Validate(); err == nil {
		t.Fatal("a negative MessageInterval validated")
	}
	if got := DefaultConfig().MessageInterval; got != time.Second {
		t.Fatalf("default MessageInterval %v; want 1 s", got)
	}
}

// BatchSize messages of one kind flush at once (size), whatever session they belong to.
func TestBatchSizeMessagesFlushAtOnce(t *testing.T) {
	c := NewCoalescer(3, 5*time.Second, 0)
	t0 := time.Unix(100, 0)
	for i := range int64(3) {
		c.Add(messagingEntry(event.KindMessage, "s1", "chat-a", i+1), t0)
	}
	if trig, due := c.Due(t0); !due || trig != TriggerSize {
		t.Fatalf("Due = %q %v with 3 messages of batch size 3; want size", trig, due)
	}
}

// While a batch of a session's messages is in flight, its next messages neither fall due nor are
// taken (two batches of one chat at once could reach Laravel in either order); other sessions'
// messages go on. Once it is settled they are due at once.
func TestASessionsNextMessagesWaitForItsBatchInFlight(t *testing.T) {
	c := NewCoalescer(50, 5*time.Second, 0)
	t0 := time.Unix(100, 0)
	c.Add(messagingEntry(event.KindMessage, "s1", "chat-a", 2), t0)
	c.SetInFlight(map[event.Kind]map[string]bool{event.KindMessage: {"s1": true}})
	late := t0.Add(10 * DefaultMessageInterval)
	if _, due := c.Due(late); due {
		t.Fatal("s1's next message fell due while its batch is in flight")
	}
	if !c.Deadline().IsZero() {
		t.Fatalf("deadline %v while only an in-flight session's messages wait; want none (no busy loop)", c.Deadline())
	}
	c.Add(messagingEntry(event.KindMessage, "s2", "chat-b", 1), late)
	bs := c.TakeDue(late.Add(DefaultMessageInterval), TriggerTime)
	if len(bs) != 1 || !slices.Equal(sequences(bs[0]), []string{"s2/1"}) {
		t.Fatalf("took %v; want only s2's message", bs)
	}
	// A receipt of s1 is another kind: not held back by s1's message batch.
	c.Add(messagingEntry(event.KindReceipt, "s1", "chat-a", 3), late)
	if bs := c.TakeAll(TriggerShutdown); len(bs) != 1 || bs[0].Kind != event.KindReceipt {
		t.Fatalf("took %v; want s1's receipt only (its message stays behind its batch in flight)", bs)
	}
	c.SetInFlight(nil)
	if trig, due := c.Due(late); !due || trig != TriggerTime {
		t.Fatalf("Due = %q %v once s1's batch settled; want time at once (it waited long)", trig, due)
	}
}

// A session with more messages waiting than a batch holds sends the first BatchSize in sequence
// order; the rest wait for that batch, so one session is never in two batches at once, and the
// other sessions fill the following batches.
func TestASessionIsInOneBatchAtATimeInSequenceOrder(t *testing.T) {
	c := NewCoalescer(3, 5*time.Second, 0)
	t0 := time.Unix(100, 0)
	for seq := int64(5); seq >= 1; seq-- {
		c.Add(messagingEntry(event.KindMessage, "s1", "chat-a", seq), t0)
	}
	c.Add(messagingEntry(event.KindMessage, "s2", "chat-b", 1), t0.Add(time.Millisecond))
	c.Add(messagingEntry(event.KindMessage, "s3", "chat-c", 1), t0.Add(2*time.Millisecond))
	bs := c.TakeAll(TriggerSize)
	var got [][]string
	for _, b := range bs {
		got = append(got, sequences(b))
	}
	want := [][]string{{"s1/1", "s1/2", "s1/3"}, {"s2/1", "s3/1"}}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("batches %v; want %v", got, want)
	}
	if c.Waiting(event.KindMessage) != 2 {
		t.Fatalf("%d messages left waiting; want s1's 4 and 5", c.Waiting(event.KindMessage))
	}
}

// A 2xx names refused items by session id only; in a batch carrying several items of a session,
// the k-th error naming it stands for its k-th item. For batches of one item per session (QR
// codes, statuses) this is exactly Account.
func TestAccountItemsMatchesTheKthErrorOfASessionToItsKthItem(t *testing.T) {
	items := []*Item{
		{Winner: messagingEntry(event.KindMessage, "s1", "c", 1)}, {Winner: messagingEntry(event.KindMessage, "s1", "c", 2)},
		{Winner: messagingEntry(event.KindMessage, "s2", "c", 1)}, {Winner: messagingEntry(event.KindMessage, "s1", "c", 3)},
	}
	for _, tc := range []struct {
		name            string
		res             laravel.BatchResult
		wantRefused     []int
		wantUnaccounted []int
	}{
		{"all applied", laravel.BatchResult{Success: true, Updated: 3, Stale: 1}, nil, nil},
		{"every item of s1 refused", laravel.BatchResult{Updated: 1, Failed: 3, Errors: []laravel.ItemError{
			{SessionID: "s1", Error: "unknown session"}, {SessionID: "s1", Error: "unknown session"}, {SessionID: "s1", Error: "unknown session"}}},
			[]int{0, 1, 3}, nil},
		{"one error for s1", laravel.BatchResult{Updated: 3, Failed: 1, Errors: []laravel.ItemError{{SessionID: "s1", Error: "bad"}}},
			[]int{0}, nil},
		{"more errors for s1 than it has items", laravel.BatchResult{Failed: 4, Errors: []laravel.ItemError{
			{SessionID: "s1", Error: "x"}, {SessionID: "s1", Error: "x"}, {SessionID: "s1", Error: "x"}, {SessionID: "s1", Error: "x"}}},
			[]int{0, 1, 3}, []int{2}},
		{"counts short of the items", laravel.BatchResult{Updated: 2}, nil, []int{0, 1, 2, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			acc := accountItems(items, tc.res)
			var refused []int
			for i := range acc.Refused {
				refused = append(refused, i)
			}
			slices.Sort(refused)
			if !slices.Equal(refused, tc.wantRefused) || !slices.Equal(acc.Unaccounted, tc.wantUnaccounted) {
				t.Fatalf("refused %v unaccounted %v; want %v and %v", refused, acc.Unaccounted, tc.wantRefused, tc.wantUnaccounted)
			}
		})
	}
	statuses := []*Item{{Winner: entry("a", "s1", 1, event.KindStatus, event.PriorityNormal)}, {Winner: entry("b", "s2", 1, event.KindStatus, event.PriorityNormal)}}
	for _, res := range []laravel.BatchResult{
		{Updated: 2}, {Updated: 1, Failed: 1, Errors: []laravel.ItemError{{SessionID: "s2", Error: "no"}}},
		{Failed: 2, Errors: []laravel.ItemError{{SessionID: "s2", Error: "no"}, {SessionID: "s2", Error: "no"}}}, {Updated: 5},
	} {
		got, want := accountItems(statuses, res), Account([]string{"s1", "s2"}, res)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("statuses, %+v: accountItems %v; Account %v", res, got, want)
		}
	}
}
