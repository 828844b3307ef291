package cache

import (
	"context"
	"sync"

	"wagate/gateway/event"
)

// owedWrites holds, per session and kind, the latest of this gateway's events whose
// write-through Redis did not take (down, paused, past WriteTimeout). Without them, a session
// whose events all failed to reach L2 during a Redis outage has no record there once Redis is
// back, and every read of it falls through to Laravel (L3), whose row is older than the
// gateway's own event anyway. With them, the next read of that session writes them again and
// answers from them. Bounded by L1MaxSize sessions; an entry is dropped once a write of the same
// or a newer version succeeds.
type owedWrites struct {
	mu  sync.Mutex
	max int
	m   map[string]map[event.Kind]owedWrite
}

// owedWrite is one owed event and the moment it was recorded (unix ms): its expiry runs from then.
type owedWrite struct {
	ev event.Event
	at int64
}

// add keeps ev as owed unless a newer event of its session and kind is owed already; it reports
// false when the bound is reached.
func (o *owedWrites) add(ev event.Event, at int64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		o.m = map[string]map[event.Kind]owedWrite{}
	}
	byKind, ok := o.m[ev.SessionID]
	if !ok {
		if len(o.m) >= o.max {
			return false
		}
		byKind = map[event.Kind]owedWrite{}
		o.m[ev.SessionID] = byKind
	}
	if cur, ok := byKind[ev.Kind]; !ok || ev.Version > cur.ev.Version {
		byKind[ev.Kind] = owedWrite{ev: ev, at: at}
	}
	return true
}

// paid drops the owed event of ev's session and kind when ev is as new: it has been written.
func (o *owedWrites) paid(ev event.Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	byKind := o.m[ev.SessionID]
	if cur, ok := byKind[ev.Kind]; ok && cur.ev.Version <= ev.Version {
		delete(byKind, ev.Kind)
		if len(byKind) == 0 {
			delete(o.m, ev.SessionID)
		}
	}
}

// of returns the owed events of a session (nil when none).
func (o *owedWrites) of(sid string) []owedWrite {
	o.mu.Lock()
	defer o.mu.Unlock()
	byKind := o.m[sid]
	if len(byKind) == 0 {
		return nil
	}
	out := make([]owedWrite, 0, len(byKind))
	for _, w := range byKind {
		out = append(out, w)
	}
	return out
}

// len returns how many sessions have owed events.
func (o *owedWrites) len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.m)
}

// owe keeps an event whose write-through failed, for the next read of its session.
func (c *Cache) owe(ev event.Event) {
	if ev.Validate() != nil {
		return // Record refused it: nothing to write
	}
	if !c.owed.add(ev, c.nowMs()) {
		c.log.Warn("cache: too many sessions with unwritten events; this one's state may be read from Laravel", "session_id", ev.SessionID, "max", c.owed.max)
	}
}

// withOwed merges the owed events of sid into r (a copy; r itself when none are owed) and, when
// write is true (Redis answered the read), writes them to L2 again in the background (payLater):
// the read answers from the merged record at once instead of waiting up to WriteTimeout per owed
// event for a Redis that was just slow enough to refuse them.
func (c *Cache) withOwed(ctx context.Context, sid string, r *record, write bool) *record {
	owed := c.owed.of(sid)
	if len(owed) == 0 {
		return r
	}
	for _, w := range owed {
		r = r.mergeEvent(w.ev, w.at+c.ttlFor(w.ev).Milliseconds(), eventTime(w.ev, w.at))
		r.owned = true
	}
	if write {
		c.payLater(ctx, sid, owed)
	}
	return r
}

// maxPayers bounds the sessions whose owed events are being written again at once.
const maxPayers = 8

// owedPayers tracks the background writes of owed events: one at a time per session, at most
// maxPayers at once; a read that finds either bound reached leaves the payment to a later read.
type owedPayers struct {
	mu     sync.Mutex
	paying map[string]bool
	wg     sync.WaitGroup
}

// payLater writes sid's owed events to L2 again in a goroutine of its own (each bounded by
// WriteTimeout, detached from the read's cancellation); a write that succeeds pays its event off.
func (c *Cache) payLater(ctx context.Context, sid string, owed []owedWrite) {
	p := &c.payers
	p.mu.Lock()
	if p.paying[sid] || len(p.paying) >= maxPayers {
		p.mu.Unlock()
		return
	}
	if p.paying == nil {
		p.paying = map[string]bool{}
	}
	p.paying[sid] = true
	p.wg.Add(1)
	p.mu.Unlock()
	bg := context.WithoutCancel(ctx)
	go func() {
		defer p.wg.Done()
		defer func() {
			p.mu.Lock()
			delete(p.paying, sid)
			p.mu.Unlock()
		}()
		for _, w := range owed {
			wctx, cancel := context.WithTimeout(bg, c.cfg.WriteTimeout)
			err := c.writeL2(wctx, w.ev, w.at) // pays w off when it succeeds
			cancel()
			if err != nil {
				c.log.Warn("cache: writing an owed event again failed", "session_id", sid, "event_id", w.ev.ID, "err", err)
			}
		}
	}()
}

// eventTime is the event's own time (unix ms), or at when it has none.
func eventTime(ev event.Event, at int64) int64 {
	if ev.Time.IsZero() {
		return at
	}
	return ev.Time.UnixMilli()
}
