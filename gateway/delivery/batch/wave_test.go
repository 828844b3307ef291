package batch

import (
	"fmt"
	"testing"
	"time"

	"wagate/gateway/event"
)

// A reconnect wave (issue 19, chaos whatsapp-down at share 1, seed 1 schedule 10: Laravel got
// 24.5 requests/s against the fault-load bound of 20): WhatsApp comes back, every session
// reconnects within a second or two and its connected status (HIGH) is flushed with priority;
// right after each login WhatsApp redelivers the messages and receipts it held, and the pairing
// sessions keep rotating their QR codes. Priority flushes are spaced (PriorityDue), but each of
// them also took every waiting QR code, message and receipt, one request per kind: a wave of
// priority flushes split the QR codes, messages and receipts into as many small batches, each a
// request (42 requests for the 2 s wave of 20 sessions below). Now a priority flush carries the
// statuses, and the other kinds only once they waited half their interval (FlushTakes).

// waveFlow is one reconnect wave's traffic as the coalescer sees it.
type waveFlow struct {
	sessions   int           // sessions reconnecting, one connected status each
	gap        time.Duration // between two sessions' connected statuses
	redelivery int           // messages and receipts WhatsApp redelivers after each login (each)
	pairing    int           // sessions showing a QR code meanwhile, a new code every qrEvery
	qrEvery    time.Duration
}

// waveResult is what the wave cost Laravel and how long events waited.
type waveResult struct {
	requests                  int // batches sent, each one request
	byKind                    map[event.Kind]int
	longestHigh, longestOther time.Duration
}

// playWave plays w on c, flushed as soon as it is due (polled every millisecond) and every batch
// settled at once, until every event was taken.
func playWave(c *Coalescer, w waveFlow) waveResult {
	t0 := time.Unix(0, 0)
	res := waveResult{byKind: map[event.Kind]int{}}
	arrived := map[string]time.Time{}
	type arrival struct {
		at  time.Time
		add func(now time.Time)
	}
	var plan []arrival
	n := 0
	add := func(at time.Time, sid string, kind event.Kind, prio event.Priority) {
		n++
		id := fmt.Sprint(n)
		plan = append(plan, arrival{at, func(now time.Time) {
			c.Add(entry(id, sid, int64(n), kind, prio), now)
			arrived["e"+id] = now
		}})
	}
	end := t0.Add(time.Duration(w.sessions) * w.gap)
	for i := range w.sessions {
		at, sid := t0.Add(time.Duration(i)*w.gap), fmt.Sprintf("s%d", i)
		add(at, sid, event.KindStatus, event.PriorityHigh)
		for j := range w.redelivery {
			add(at.Add(time.Duration(10+5*j)*time.Millisecond), sid, event.KindMessage, event.PriorityNormal)
			add(at.Add(time.Duration(12+5*j)*time.Millisecond), sid, event.KindReceipt, event.PriorityNormal)
		}
	}
	for p := range w.pairing {
		for at := t0.Add(time.Duration(p) * 7 * time.Millisecond); at.Before(end); at = at.Add(w.qrEvery) {
			add(at, fmt.Sprintf("pairing%d", p), event.KindQR, event.PriorityNormal)
		}
	}
	left := len(plan)
	for now := t0; left > 0 || c.Deadline() != (time.Time{}); now = now.Add(time.Millisecond) {
		for i := range plan {
			if plan[i].add != nil && !now.Before(plan[i].at) {
				plan[i].add(now)
				plan[i].add = nil
				left--
			}
		}
		trig, due := c.Due(now)
		if !due {
			continue
		}
		for _, b := range c.TakeDue(now, trig) {
			res.requests++
			res.byKind[b.Kind]++
			for _, it := range b.Items {
				waited := now.Sub(arrived[it.Winner.Event.ID])
				if it.Winner.Event.Priority == event.PriorityHigh {
					res.longestHigh = max(res.longestHigh, waited)
				} else {
					res.longestOther = max(res.longestOther, waited)
				}
			}
		}
		if now.After(end.Add(time.Minute)) {
			break // a coalescer that never drains: the counts below fail
		}
	}
	return res
}

// The requests a reconnect wave costs Laravel, with the chaos campaign's intervals (priority
// 300 ms, batch 1 s, messages 1 s) and the production defaults (priority 1 s, batch 5 s, messages
// 1 s). The bound is what the kinds' own cadences allow over the wave: one status batch per
// priority spacing, one QR batch per half batch interval, one message and one receipt batch per
// half message interval, each plus the first and the one that closes the wave. HIGH events still
// wait at most half the priority interval, the others at most their own interval. Before
// FlushTakes, the first two rows cost 28 and 42 requests.
func TestAReconnectWaveCostsLaravelOneRequestPerKindAndCadenceNotOnePerPriorityFlush(t *testing.T) {
	for _, c := range []struct {
		name                       string
		priority, batch, messaging time.Duration
		flow                       waveFlow
	}{
		{"chaos: 20 sessions in 1 s, 2 messages and receipts each, 3 pairing",
			300 * time.Millisecond, time.Second, time.Second,
			waveFlow{sessions: 20, gap: 50 * time.Millisecond, redelivery: 2, pairing: 3, qrEvery: 300 * time.Millisecond}},
		{"chaos: 20 sessions in 2 s, 1 message and receipt each, none pairing",
			300 * time.Millisecond, time.Second, time.Second,
			waveFlow{sessions: 20, gap: 100 * time.Millisecond, redelivery: 1}},
		{"chaos: 20 sessions within 20 ms",
			300 * time.Millisecond, time.Second, time.Second,
			waveFlow{sessions: 20, gap: time.Millisecond, redelivery: 2, pairing: 3, qrEvery: 300 * time.Millisecond}},
		{"defaults: 200 sessions in 4 s, 2 messages and receipts each, 10 pairing",
			time.Second, 5 * time.Second, time.Second,
			waveFlow{sessions: 200, gap: 20 * time.Millisecond, redelivery: 2, pairing: 10, qrEvery: 400 * time.Millisecond}},
	} {
		t.Run(c.name, func(t *testing.T) {
			co := NewCoalescer(50, c.batch, c.priority/20)
			co.SetPrioritySpacing(c.priority / 2)
			co.SetMessageInterval(c.messaging)
			got := playWave(co, c.flow)

			wave := time.Duration(c.flow.sessions) * c.flow.gap
			perCadence := func(items int, cadence time.Duration) int {
				return min(int(wave/cadence)+2, items) + items/50
			}
			statuses := perCadence(c.flow.sessions, c.priority/2)
			qrs := 0
			if c.flow.pairing > 0 {
				qrs = perCadence(int(wave/c.flow.qrEvery+1)*c.flow.pairing, c.batch/2)
			}
			messaging := 2 * perCadence(c.flow.sessions*c.flow.redelivery, c.messaging/2)
			if limit := statuses + qrs + messaging; got.requests > limit {
				t.Errorf("the wave cost Laravel %d requests (%v); want at most %d (statuses %d, QR %d, messages and receipts %d)",
					got.requests, got.byKind, limit, statuses, qrs, messaging)
			}
			if got.longestHigh > c.priority/2 {
				t.Errorf("a connected status waited %s; want at most half the priority interval (%s)", got.longestHigh, c.priority/2)
			}
			if limit := max(c.batch, c.messaging); got.longestOther > limit {
				t.Errorf("a QR code, message or receipt waited %s; want at most its interval (%s)", got.longestOther, limit)
			}
			t.Logf("%d requests %v; longest wait HIGH %s, others %s", got.requests, got.byKind, got.longestHigh, got.longestOther)
		})
	}
}

// Which kinds a flush takes, from its trigger and how ready each group is (FlushTakes).
func TestFlushTakes(t *testing.T) {
	for _, c := range []struct {
		name                          string
		trigger                       Trigger
		state, messaging              Readiness
		statuses, qrs, messagingTaken bool
	}{
		{"shutdown takes everything", TriggerShutdown, Young, Young, true, true, true},
		{"priority with young QR codes and chats: the statuses alone", TriggerPriority, Young, Young, true, false, false},
		{"priority with ripe QR codes and statuses: both", TriggerPriority, Ripe, Young, true, true, false},
		{"priority with ripe chats: the statuses and the chats", TriggerPriority, Young, Ripe, true, false, true},
		{"priority when the chats are due: the statuses and the chats", TriggerPriority, Young, Due, true, false, true},
		{"QR codes and statuses due by time, chats young: the state kinds", TriggerTime, Due, Young, true, true, false},
		{"QR codes and statuses due by size, chats ripe: everything", TriggerSize, Due, Ripe, true, true, true},
		{"chats due, state young: the chats alone", TriggerTime, Young, Due, false, false, true},
		{"chats due, state ripe: the state kinds ride along", TriggerTime, Ripe, Due, true, true, true},
		{"nothing due (a time trigger of nothing): nothing", TriggerTime, Ripe, Ripe, false, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, q, m := FlushTakes(c.trigger, c.state, c.messaging)
			if s != c.statuses || q != c.qrs || m != c.messagingTaken {
				t.Fatalf("FlushTakes = statuses %v, QR %v, messages %v; want %v, %v, %v", s, q, m, c.statuses, c.qrs, c.messagingTaken)
			}
		})
	}
}
