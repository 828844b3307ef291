package batch

import (
	"fmt"
	"testing"
	"time"

	"wagate/gateway/event"
	"wagate/gateway/outbox"
)

// The coalescer's decisions, on its own (no outbox, no clock): which item wins, how items split
// into batches and their keys, and when they are due (size, time, priority).

func TestPriorityDue(t *testing.T) {
	t0 := time.Unix(1000, 0)
	const linger, spacing = 15 * time.Millisecond, 150 * time.Millisecond
	cases := []struct {
		name                 string
		highSince, lastState time.Time
		want                 time.Time
	}{
		{"no HIGH event waits", time.Time{}, t0, time.Time{}},
		{"no flush yet: the linger", t0, time.Time{}, t0.Add(linger)},
		{"the previous flush long ago: the linger", t0, t0.Add(-time.Second), t0.Add(linger)},
		{"the previous flush just before: its spacing", t0, t0.Add(-10 * time.Millisecond), t0.Add(140 * time.Millisecond)},
		{"the spacing ends inside the linger: the linger", t0, t0.Add(-140 * time.Millisecond), t0.Add(linger)},
		{"a flush at the same moment: the whole spacing", t0, t0, t0.Add(spacing)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := PriorityDue(c.highSince, c.lastState, linger, spacing); !got.Equal(c.want) {
				t.Fatalf("PriorityDue = %s; want %s", got, c.want)
			}
		})
	}
}

// burst plays HIGH events of n sessions arriving every gap on a coalescer flushed as soon as it is
// due (polled every millisecond), and returns how many flushes carried them and the longest a
// HIGH event waited for its flush.
func burst(c *Coalescer, n int, gap time.Duration) (flushes int, longest time.Duration) {
	t0 := time.Unix(0, 0)
	arrived := map[string]time.Time{}
	next := 0
	for now := t0; now.Before(t0.Add(time.Duration(n)*gap + 5*time.Second)); now = now.Add(time.Millisecond) {
		if next < n && !now.Before(t0.Add(time.Duration(next)*gap)) {
			sid := fmt.Sprintf("s%d", next)
			c.Add(entry(fmt.Sprint(next), sid, 1, event.KindStatus, event.PriorityHigh), now)
			arrived[sid] = now
			next++
		}
		if trig, due := c.Due(now); due {
			bs := c.TakeDue(now, trig)
			if len(bs) > 0 {
				flushes++
			}
			for _, b := range bs {
				for _, it := range b.Items {
					longest = max(longest, now.Sub(arrived[it.Winner.Event.SessionID]))
				}
			}
		}
	}
	return flushes, longest
}

// Chaos seed 2 schedule 42: after a Redis pause, 17 sessions paired within 1.2 s, each
// connected (HIGH) a few tens of milliseconds after the other; with a 300 ms priority interval the
// flusher lingered 15 ms after each and sent one status batch per event (11 status batches/s,
// above the campaign's bound on Laravel's load during faults, then named retry-storm, now fault-load,
// with the QR batches riding along). Priority flushes are
// now spaced half the priority interval apart: the burst shares a few batches, and no HIGH event
// waits longer than half the priority interval.
func TestABurstOfHighEventsSharesFewPriorityFlushesEachWithinThePriorityInterval(t *testing.T) {
	const interval = 300 * time.Millisecond
	c := NewCoalescer(50, time.Second, interval/20)
	c.SetPrioritySpacing(interval / 2)
	flushes, longest := burst(c, 20, 60*time.Millisecond)
	// 20 events over 1.14 s: one flush per 150 ms at most, plus the first after the linger.
	if limit := int((20*60*time.Millisecond)/(interval/2)) + 1; flushes > limit {
		t.Errorf("%d priority flushes for 20 HIGH events 60 ms apart; want at most %d", flushes, limit)
	}
	if longest > interval/2 {
		t.Errorf("a HIGH event waited %s; want at most half the priority interval (%s)", longest, interval/2)
	}

	// A HIGH event after a quiet spell still goes after the linger alone.
	quiet := NewCoalescer(50, time.Second, interval/20)
	quiet.SetPrioritySpacing(interval / 2)
	if flushes, longest := burst(quiet, 1, 0); flushes != 1 || longest != interval/20 {
		t.Errorf("a lone HIGH event: %d flushes, waited %s; want 1 flush after the %s linger", flushes, longest, interval/20)
	}
}

func entry(id, sid string, ver int64, kind event.Kind, prio event.Priority) outbox.Entry {
	return outbox.Entry{ID: id, Event: event.Event{ID: "e" + id, SessionID: sid, Kind: kind, Version: ver, Priority: prio, Payload: "x"}}
}

func TestTheCoalescerSplitsIntoBatchesOfAtMostSizeOldestFirst(t *testing.T) {
	t0 := time.Unix(0, 0)
	c := NewCoalescer(2, time.Second, 0)
	for i := 0; i < 5; i++ {
		c.Add(entry(fmt.Sprint(i), fmt.Sprintf("s%d", i), 1, event.KindQR, event.PriorityNormal), t0.Add(time.Duration(i)))
	}
	if trig, due := c.Due(t0); !due || trig != TriggerSize {
		t.Fatalf("Due = %s, %v; want size", trig, due)
	}
	bs := c.TakeAll(TriggerSize)
	if len(bs) != 3 || len(bs[0].Items) != 2 || len(bs[2].Items) != 1 || bs[0].Items[0].Winner.ID != "0" || bs[2].Items[0].Winner.ID != "4" {
		t.Fatalf("batches %+v", bs)
	}
	if bs[0].Key == bs[1].Key {
		t.Fatal("different batches share an Idempotency-Key")
	}
	if c.Waiting(event.KindQR) != 0 || !c.Deadline().IsZero() {
		t.Fatal("items left after TakeAll")
	}
}

func TestAnOlderVersionReadLaterNeverReplacesTheWinner(t *testing.T) {
	c := NewCoalescer(50, time.Second, 0)
	now := time.Unix(0, 0)
	c.Add(entry("2", "s", 5, event.KindStatus, event.PriorityNormal), now)
	c.Add(entry("1", "s", 3, event.KindStatus, event.PriorityNormal), now) // e.g. reclaimed late
	bs := c.TakeAll(TriggerTime)
	if w := bs[0].Items[0].Winner.Event.Version; w != 5 || c.Coalesced() != 1 {
		t.Fatalf("winner version %d, coalesced %d", w, c.Coalesced())
	}
}

func TestItemsPutBackAfterTheDeliveryBudgetMergeWithoutRecounting(t *testing.T) {
	c := NewCoalescer(50, time.Second, 0)
	now := time.Unix(0, 0)
	c.Add(entry("1", "s", 1, event.KindQR, event.PriorityNormal), now)
	if old, ok := c.Add(entry("2", "s", 2, event.KindQR, event.PriorityNormal), now); !ok || old.ID != "1" {
		t.Fatalf("Add returned %+v, %v; want entry 1 superseded (to acknowledge)", old, ok)
	}
	old := c.TakeAll(TriggerTime)
	c.Add(entry("3", "s", 3, event.KindQR, event.PriorityNormal), now)
	superseded := c.readd(old[0].Items, now)
	bs := c.TakeAll(TriggerTime)
	if len(bs) != 1 || bs[0].Items[0].Winner.ID != "3" || bs[0].EntryCount() != 1 || c.Coalesced() != 1 {
		t.Fatalf("batches %+v coalesced %d; want winner 3 alone, coalesced counted once", bs, c.Coalesced())
	}
	if len(superseded) != 1 || superseded[0].ID != "2" {
		t.Fatalf("readd superseded %+v; want entry 2 (to acknowledge)", superseded)
	}
}

func TestTheSameItemsMakeTheSameKeyAndBodyWhateverTheirArrivalOrder(t *testing.T) {
	t0 := time.Unix(0, 0)
	a, b := NewCoalescer(50, time.Second, 0), NewCoalescer(50, time.Second, 0)
	a.Add(entry("1", "s1", 1, event.KindQR, event.PriorityNormal), t0)
	a.Add(entry("2", "s2", 1, event.KindQR, event.PriorityNormal), t0.Add(time.Second))
	b.Add(entry("2", "s2", 1, event.KindQR, event.PriorityNormal), t0) // e.g. recovered after a restart
	b.Add(entry("1", "s1", 1, event.KindQR, event.PriorityNormal), t0.Add(time.Second))
	ba, bb := a.TakeAll(TriggerTime)[0], b.TakeAll(TriggerTime)[0]
	if ba.Key != bb.Key || ba.Items[0].Winner.ID != bb.Items[0].Winner.ID || ba.Items[1].Winner.ID != bb.Items[1].Winner.ID {
		t.Fatalf("keys %s/%s, first items %s/%s: a replay would not match the stored request", ba.Key, bb.Key, ba.Items[0].Winner.ID, bb.Items[0].Winner.ID)
	}
}
