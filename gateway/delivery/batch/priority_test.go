package batch

import (
	"fmt"
	"testing"
	"time"

	"wagate/gateway/event"
)

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
// above the campaign's retry-storm bound with the QR batches riding along). Priority flushes are
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
