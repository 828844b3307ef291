package outbox

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"wagate/gateway/event"
	"wagate/gateway/laravel"
	"wagate/internal/redistest"
)

func customerMessage(sid, waID string, seq int64) event.Event {
	at := time.Date(2026, 12, 6, 18, 0, 0, 0, time.UTC)
	return event.Event{ID: sid + "-message-" + string(rune('0'+seq)), SessionID: sid, Kind: event.KindMessage, Payload: waID, Version: seq, Time: at,
		Message: &laravel.MessageItem{SessionID: sid, MessageID: waID, Chat: "34600000001@s.whatsapp.net", Sender: "34600000001@s.whatsapp.net",
			Type: laravel.MessageText, Text: "hola", Timestamp: at, Sequence: seq}}
}

func receiptOf(sid, waID string, status laravel.ReceiptStatus, seq int64) event.Event {
	at := time.Date(2026, 12, 6, 18, 0, 0, 0, time.UTC)
	return event.Event{ID: sid + "-receipt-" + string(rune('0'+seq)), SessionID: sid, Kind: event.KindReceipt, Payload: waID, Version: seq, Time: at,
		Receipt: &laravel.ReceiptItem{SessionID: sid, MessageID: waID, Chat: "34600000001@s.whatsapp.net", Sender: "34600000001@s.whatsapp.net",
			Status: status, Timestamp: at, Sequence: seq}}
}

// WhatsApp delivers again a message the gateway did not acknowledge; when the first append's answer
// was lost (Redis paused past the append deadline, then ran it), the gateway refused the message
// to WhatsApp although the outbox holds it. Its redelivery, under a new sequence, must not become
// a second entry: Laravel would get the message twice (chaos seed 3, schedule 5).
func TestARedeliveredMessageOrReceiptIsAppendedOnce(t *testing.T) {
	for _, tc := range []struct {
		name   string
		first  event.Event
		again  event.Event
		wantN  int64
		sameID bool
	}{
		{"a message redelivered under a new sequence", customerMessage("s1", "WAID1", 1), customerMessage("s1", "WAID1", 2), 1, true},
		{"another message of the chat", customerMessage("s1", "WAID1", 1), customerMessage("s1", "WAID2", 2), 2, false},
		{"the same message id on another session", customerMessage("s1", "WAID1", 1), customerMessage("s2", "WAID1", 1), 2, false},
		{"a receipt redelivered", receiptOf("s1", "OUT1", laravel.ReceiptRead, 1), receiptOf("s1", "OUT1", laravel.ReceiptRead, 2), 1, true},
		{"the next status of a receipt", receiptOf("s1", "OUT1", laravel.ReceiptDelivered, 1), receiptOf("s1", "OUT1", laravel.ReceiptRead, 2), 2, false},
		{"a repeated state change (no once key: Laravel keeps the highest version)", testEvent("s1", 1, event.KindStatus, "connected"), testEvent("s1", 1, event.KindStatus, "connected"), 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
				ctx := context.Background()
				o := newOutbox(t, b, Config{})
				id1, err := o.Append(ctx, tc.first)
				if err != nil {
					t.Fatal(err)
				}
				id2, err := o.Append(ctx, tc.again)
				if err != nil {
					t.Fatal(err)
				}
				if st, _ := o.Stats(ctx); st.Length != tc.wantN {
					t.Errorf("the outbox holds %d entries, want %d", st.Length, tc.wantN)
				}
				if (id1 == id2) != tc.sameID {
					t.Errorf("ids %s and %s: same = %v, want %v", id1, id2, id1 == id2, tc.sameID)
				}
			})
		})
	}
}

// The append whose answer never came ran in Redis: the gateway's retry of the same message (its
// redelivery) answers the entry that run made.
func TestAnAppendWhoseAnswerWasLostIsFoundByTheRedelivery(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		o := newOutbox(t, b, Config{})
		lost := customerMessage("s1", "WAID9", 1)
		item, err := encodeItem(lost)
		if err != nil {
			t.Fatal(err)
		}
		args := []any{o.cfg.Max, lost.ID, lost.SessionID, string(lost.Kind), lost.Payload, "1", "0", "0", item}
		ranInRedis, _, err := o.tryAppendOnce(ctx, args, o.onceKey(lost))
		if err != nil {
			t.Fatal(err)
		}
		got, err := o.Append(ctx, customerMessage("s1", "WAID9", 2))
		if err != nil {
			t.Fatal(err)
		}
		if got != ranInRedis {
			t.Errorf("the redelivery got entry %s, want the lost append's %s", got, ranInRedis)
		}
		if st, _ := o.Stats(ctx); st.Length != 1 {
			t.Errorf("the outbox holds %d entries, want 1", st.Length)
		}
	})
}

// A once-only key says the outbox took an item; it does not say the entry is still there. A Redis
// evicting keys at runtime (allkeys-lru set while the gateway runs) can take the stream and leave
// the once keys: the loss is noticed (a new generation) and the journal appended again, and an
// append that trusted the surviving once key answered the vanished entry's id, so the item was
// never sent (chaos seed 2 schedule 10: a customer's message lost). An item appended again after
// a loss is a new entry unless its entry survived the loss; within one generation the once key
// alone decides (a redelivery after the entry was delivered and acknowledged stays out).
func TestAnItemWhoseEntryALossTookIsAppendedAgainDespiteItsOnceKey(t *testing.T) {
	for _, tc := range []struct {
		name      string
		acked     bool // the first entry delivered and acknowledged before the loss (if any)
		loss      bool // a new generation between the two appends
		dropped   bool // the loss took the stream (the once key survived)
		wantN     int64
		wantFresh bool // the second append made a new entry
	}{
		{"same generation, entry pending", false, false, false, 1, false},
		{"same generation, entry acknowledged", true, false, false, 0, false},
		{"a loss that kept the stream", false, true, false, 1, false},
		{"a loss that took the stream but not the once key", false, true, true, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
				ctx := context.Background()
				o := newOutbox(t, b, Config{})
				msg := customerMessage("s1", "WAID7", 1)
				id1, err := o.Append(ctx, msg)
				if err != nil {
					t.Fatal(err)
				}
				if tc.acked {
					if _, err := o.ReadNew(ctx, 10); err != nil {
						t.Fatal(err)
					}
					if err := o.Ack(ctx, id1); err != nil {
						t.Fatal(err)
					}
				}
				rdb := b.Client(t)
				if tc.dropped {
					if err := rdb.Del(ctx, o.cfg.Stream).Err(); err != nil {
						t.Fatal(err)
					}
					// A recreated stream numbers its entries from the clock again: within the
					// same millisecond a new entry would get the vanished one's id (1 run in 5).
					time.Sleep(2 * time.Millisecond)
				}
				if tc.loss {
					if !tc.dropped { // the loss took the marker (evicted) and kept the stream
						if err := rdb.Del(ctx, o.cfg.MarkerKey).Err(); err != nil {
							t.Fatal(err)
						}
					}
					if lost, err := o.CheckGeneration(ctx); err != nil || !lost {
						t.Fatalf("CheckGeneration = %v, %v; want the loss noticed", lost, err)
					}
				}
				id2, err := o.Append(ctx, customerMessage("s1", "WAID7", 1))
				if err != nil {
					t.Fatal(err)
				}
				if st, _ := o.Stats(ctx); st.Length != tc.wantN {
					t.Errorf("the outbox holds %d entries, want %d", st.Length, tc.wantN)
				}
				if fresh := id2 != id1; fresh != tc.wantFresh {
					t.Errorf("ids %s then %s: a new entry = %v, want %v", id1, id2, fresh, tc.wantFresh)
				}
			})
		})
	}
}

// The journal's replay leaves out what the stream still holds; MessagingEvents is what it holds
// of customers' messages and receipts: not state changes, not acknowledged entries.
func TestMessagingEventsAreTheCustomersItemsStillInTheStream(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		o := newOutbox(t, b, Config{})
		delivered, waiting := customerMessage("s1", "WAID1", 1), customerMessage("s1", "WAID2", 2)
		receipt := receiptOf("s2", "OUT1", laravel.ReceiptRead, 1)
		var ids []string
		for _, ev := range []event.Event{delivered, testEvent("s1", 3, event.KindStatus, "connected"), waiting, receipt} {
			id, err := o.Append(ctx, ev)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		if _, err := o.ReadNew(ctx, 10); err != nil {
			t.Fatal(err)
		}
		if err := o.Ack(ctx, ids[0]); err != nil {
			t.Fatal(err)
		}
		got, err := o.MessagingEvents(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var gotIDs []string
		for _, ev := range got {
			gotIDs = append(gotIDs, ev.ID)
		}
		if want := []string{waiting.ID, receipt.ID}; !slices.Equal(gotIDs, want) {
			t.Errorf("MessagingEvents = %v, want %v", gotIDs, want)
		}
	})
}

// Chaos seed 1 schedule 18 (-kinds redis-evict): a customer's message applied twice. Redis, set to
// allkeys-lru under memory pressure, refused a session's append of the message (OOM) and the
// append retried; the evictions took the stream and the marker, the keeper noticed the loss, and
// the message journal's replay appended the message, whose row the session had written before
// its append began. The delivery read that entry and sent it; the eviction went on and took its
// once key; then the session's append, still retrying, found no once key and added a second entry
// of the item, sent in another batch. An append that a noticed loss overtook gives way to the
// replay (the journal carries the item) instead of racing it.
func TestAnAppendALossOvertookWhileItWaitedGivesWayToTheJournalsReplay(t *testing.T) {
	for _, tc := range []struct {
		name    string
		loss    bool
		wantErr error
	}{
		{"Redis lost its data while it waited: the replay's entry is the item's only one", true, ErrOvertakenByLoss},
		{"no loss while it waited: it appends once room comes", false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
				ctx := context.Background()
				// RoomPoll is long: the waiting append is woken by the test alone, after the loss.
				o := newOutbox(t, b, Config{Max: 2, AppendTimeout: time.Minute, RoomPoll: time.Minute, Journaled: true})
				fillWith(t, o, 2)
				msg := customerMessage("s1", "WAID5", 1)
				done := make(chan error, 1)
				go func() {
					_, err := o.Append(ctx, msg)
					done <- err
				}()
				waitFor(t, "the message's append to wait for room", func() bool { return o.waiting() == 1 })
				rdb := b.Client(t)
				if tc.loss {
					// The evictions take the stream and the marker; the keeper notices the loss.
					if err := rdb.Del(ctx, o.cfg.Stream, o.cfg.MarkerKey).Err(); err != nil {
						t.Fatal(err)
					}
					if lost, err := o.CheckGeneration(ctx); err != nil || !lost {
						t.Fatalf("CheckGeneration = %v, %v; want the loss noticed", lost, err)
					}
					// The journal's replay appends the item (another outbox on the same Redis
					// stands in for it: the waiting append is first in this one's queue) ...
					replay := newOutbox(t, b, Config{Consumer: "gw-replay"})
					if _, err := replay.Append(ctx, msg); err != nil {
						t.Fatal(err)
					}
					// ... and the evicting Redis takes its once key.
					if err := rdb.Del(ctx, o.onceKey(msg)).Err(); err != nil {
						t.Fatal(err)
					}
				} else {
					got, err := o.ReadNew(ctx, 1)
					if err != nil || len(got) != 1 {
						t.Fatalf("read %d, %v", len(got), err)
					}
					if err := o.Ack(ctx, got[0].ID); err != nil {
						t.Fatal(err)
					}
				}
				o.wake(1) // room: the poller would see it later
				if err := <-done; !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
					t.Errorf("the waiting append: %v; want %v", err, tc.wantErr)
				}
				evs, err := o.MessagingEvents(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if len(evs) != 1 {
					t.Errorf("the stream holds %d entries of the message, want 1", len(evs))
				}
			})
		})
	}
}

// Chaos seed 1 schedule 22 (-kinds redis-evict): a customer's message lost. Its append ran while
// the evictions had taken the marker and not yet the stream, so its once key named no
// generation, and such a key was trusted alone; the stream went next, the keeper noticed the
// loss, and the journal's replay of the item was answered the vanished entry's id. A key written
// while the marker was gone names no generation a later one matches.
func TestAnItemAppendedWhileTheMarkerWasGoneIsAppendedAgainAfterTheLossTookItsEntry(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		o := newOutbox(t, b, Config{})
		rdb := b.Client(t)
		if err := rdb.Del(ctx, o.cfg.MarkerKey).Err(); err != nil {
			t.Fatal(err)
		}
		msg := customerMessage("s1", "WAID6", 1)
		first, err := o.Append(ctx, msg)
		if err != nil {
			t.Fatal(err)
		}
		if err := rdb.Del(ctx, o.cfg.Stream).Err(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // a recreated stream numbers its entries from the clock again
		if lost, err := o.CheckGeneration(ctx); err != nil || !lost {
			t.Fatalf("CheckGeneration = %v, %v; want the loss noticed", lost, err)
		}
		again, err := o.Append(ctx, msg) // the journal's replay
		if err != nil {
			t.Fatal(err)
		}
		if again == first {
			t.Errorf("the replay was answered the vanished entry %s", first)
		}
		if evs, err := o.MessagingEvents(ctx); err != nil || len(evs) != 1 {
			t.Errorf("the stream holds %d entries of the message (%v), want 1", len(evs), err)
		}
	})
}

// A stream removed (evicted) and recreated numbers its entries from the clock again, so within one
// millisecond another item's entry takes the id a vanished entry had. The once key of the vanished
// entry's item must not be vouched for by that other entry: chaos seed 1 schedule 40 (-kinds
// redis-evict, a gateway pause, three losses within a second) lost a customer's message when the
// journal's replay appended message 2, the stream was evicted, message 3 got message 2's id in
// the recreated stream, and the next replay of message 2 was answered message 3's id. Whether or
// not the loss was noticed before the replay, message 2 is appended again.
func TestAnotherItemsEntryUnderAVanishedEntrysIdDoesNotVouchForIt(t *testing.T) {
	for _, tc := range []struct {
		name    string
		noticed bool // the keeper noticed the loss (a new generation) before the replay
	}{
		{"the loss noticed before the replay", true},
		{"the loss not noticed yet (the marker intact)", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
				ctx := context.Background()
				o := newOutbox(t, b, Config{})
				rdb := b.Client(t)
				two, three := customerMessage("s1", "WAID2", 2), customerMessage("s1", "WAID3", 3)
				id2, err := o.Append(ctx, two)
				if err != nil {
					t.Fatal(err)
				}
				// Message 3's entry as the outbox writes it, then put at message 2's id in a
				// recreated stream (what the clock does to two appends in one millisecond).
				id3, err := o.Append(ctx, three)
				if err != nil {
					t.Fatal(err)
				}
				entry3, err := rdb.XRange(ctx, o.cfg.Stream, id3, id3).Result()
				if err != nil || len(entry3) != 1 {
					t.Fatalf("message 3's entry: %v, %v", entry3, err)
				}
				if err := rdb.Del(ctx, o.cfg.Stream).Err(); err != nil { // evicted
					t.Fatal(err)
				}
				if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: o.cfg.Stream, ID: id2, Values: entry3[0].Values}).Err(); err != nil {
					t.Fatal(err)
				}
				if tc.noticed {
					if lost, err := o.CheckGeneration(ctx); err != nil || !lost {
						t.Fatalf("CheckGeneration = %v, %v; want the loss noticed", lost, err)
					}
				}
				again, err := o.Append(ctx, two) // the journal's replay of message 2
				if err != nil {
					t.Fatal(err)
				}
				if again == id2 {
					t.Errorf("the replay of message 2 was answered %s, message 3's entry", id2)
				}
				evs, err := o.MessagingEvents(ctx)
				if err != nil {
					t.Fatal(err)
				}
				var payloads []string
				for _, ev := range evs {
					payloads = append(payloads, ev.Payload)
				}
				slices.Sort(payloads)
				if want := []string{"WAID2", "WAID3"}; !slices.Equal(payloads, want) {
					t.Errorf("the stream holds the messages %v, want %v", payloads, want)
				}
				// Once appended again, the item's key vouches for its own entry: a second
				// replay adds nothing.
				if twice, err := o.Append(ctx, two); err != nil || twice != again {
					t.Errorf("a second replay = %s, %v; want %s", twice, err, again)
				}
			})
		})
	}
}
