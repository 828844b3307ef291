package session

// The per-session event queue: emit stamps an event with its version, enqueue appends it to the
// session's queue (dropping the oldest QR code when full), and one drainer per session with
// events hands them to the delivery in order.

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"time"

	"wagate/gateway/event"
	"wagate/gateway/laravel"
)

// DroppedSuperseded is the EventDropped reason of a QR code a later event of its session made
// moot before the delivery took it (supersedesQR).
const DroppedSuperseded = "superseded"

// errQRSuperseded cancels the delivery of a QR code a later event of its session made moot.
var errQRSuperseded = errors.New("session: QR code superseded by a later event of its session")

// supersedesQR reports whether later, queued after a QR code of the same session, makes that
// code moot: a newer code, or a status that ends its display (connected, disconnected,
// logged_out, expired). A pending status does not (a resync sends pending, then the code).
// Issue 19: a session's connected or logged_out waited in its own queue behind its older QR
// code, which a full outbox held for up to 5 s, and longer now that room goes to final states
// first.
func supersedesQR(later event.Event) bool {
	switch later.Kind {
	case event.KindQR:
		return true
	case event.KindStatus:
		return laravel.Status(later.Payload) != laravel.StatusPending
	}
	return false
}

// mootQR reports whether ev is a QR code one of the later events queued behind it supersedes.
func mootQR(ev event.Event, later []event.Event) bool {
	return ev.Kind == event.KindQR && slices.ContainsFunc(later, supersedesQR)
}

// emit builds the event and queues it for delivery, in order per session. Callers hold s.mu.
func (m *Manager) emit(s *session, kind event.Kind, payload string) {
	now := time.Now()
	if s.dropped {
		m.fenced(FencedEvent)
		return
	}
	v, ok := m.nextVersion(s)
	if !ok {
		m.fenced(FencedEvent)
		return
	}
	ev := event.Event{
		ID:        s.id + "-" + strconv.FormatInt(v, 10),
		SessionID: s.id,
		Kind:      kind,
		Payload:   payload,
		Time:      now,
		Version:   v,
		Priority:  event.PriorityOf(kind, payload),
	}
	s.updated = now
	m.enqueue(s, ev)
}

// enqueue queues ev for delivery behind s's earlier events. Callers hold s.mu.
func (m *Manager) enqueue(s *session, ev event.Event) {
	if h := m.cfg.Hooks.EventEmitted; h != nil {
		h(ev)
	}
	if len(s.outq) >= m.cfg.MaxQueuedEvents {
		if i := slices.IndexFunc(s.outq, func(e event.Event) bool { return e.Kind == event.KindQR }); i >= 0 {
			dropped := s.outq[i]
			s.outq = slices.Delete(s.outq, i, i+1)
			m.log.Warn("delivery is behind; dropping an old QR code", "session_id", s.id, "version", dropped.Version)
			if h := m.cfg.Hooks.EventDropped; h != nil {
				h(dropped, "queue_full")
			}
		}
	}
	s.outq = append(s.outq, ev)
	if s.qrInFlight != nil && supersedesQR(ev) {
		s.qrInFlight(errQRSuperseded) // its delivery may wait for room: the newer event goes first
	}
	if s.draining {
		return
	}
	if !m.drainers.add() {
		// Shutting down: nothing delivers any more. Batch mode's outbox never saw it either;
		// the next start re-derives the state (reconnects report connected, pending expire).
		s.outq = s.outq[:0]
		m.markDirtyLocked(s)
		if h := m.cfg.Hooks.EventDropped; h != nil {
			h(ev, "shutdown")
		}
		return
	}
	s.draining = true
	go m.drain(s)
}

// drain hands s's queued events to the delivery one at a time until the queue is empty.
func (m *Manager) drain(s *session) {
	defer m.drainers.done()
	for {
		s.mu.Lock()
		if len(s.outq) == 0 {
			s.outq = nil
			s.draining = false
			s.mu.Unlock()
			return
		}
		ev := s.outq[0]
		s.outq[0] = event.Event{}
		s.outq = s.outq[1:]
		if mootQR(ev, s.outq) {
			s.mu.Unlock()
			m.dropSuperseded(ev)
			continue
		}
		ctx := m.ctx
		var cancel context.CancelCauseFunc
		if ev.Kind == event.KindQR {
			ctx, cancel = context.WithCancelCause(m.ctx)
			s.qrInFlight = cancel
		}
		s.mu.Unlock()
		err := m.sink.Deliver(ctx, ev)
		if cancel != nil {
			s.mu.Lock()
			s.qrInFlight = nil
			s.mu.Unlock()
			cancel(nil)
			if err != nil && errors.Is(context.Cause(ctx), errQRSuperseded) {
				m.dropSuperseded(ev) // not refused: the later event carries the state
				continue
			}
		}
		if err != nil {
			m.log.Warn("event not delivered; the session's current state will be sent again", "session_id", ev.SessionID, "kind", ev.Kind,
				"payload", redactQR(ev), "version", ev.Version, "err", err)
			if h := m.cfg.Hooks.DeliveryFailed; h != nil {
				h(ev, err)
			}
			if ev.Kind.IsMessaging() {
				continue // a message is not session state: resending the status would not bring it back
			}
			s.mu.Lock()
			m.markDirtyLocked(s)
			s.mu.Unlock()
			m.scheduleResync(m.cfg.ResyncRetry)
		} else if m.Dirty() > 0 {
			m.scheduleResync(0) // the delivery accepts again
		}
	}
}

// dropSuperseded counts a QR code dropped because a later event of its session made it moot.
func (m *Manager) dropSuperseded(ev event.Event) {
	if h := m.cfg.Hooks.EventDropped; h != nil {
		h(ev, DroppedSuperseded)
	}
}

// redactQR keeps QR codes (pairing secrets) out of logs.
func redactQR(ev event.Event) string {
	if ev.Kind == event.KindQR {
		return "<qr>"
	}
	return ev.Payload
}

// inflight counts running drainers and says when the last one finished after closing.
type inflight struct {
	mu      sync.Mutex
	n       int
	closing bool
	idle    chan struct{}
}

func (t *inflight) add() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closing {
		return false
	}
	t.n++
	return true
}

func (t *inflight) done() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n--
	if t.n == 0 && t.idle != nil {
		close(t.idle)
		t.idle = nil
	}
}

// close stops new drainers and returns a channel closed once none runs.
func (t *inflight) close() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closing = true
	ch := make(chan struct{})
	if t.n == 0 {
		close(ch)
	} else {
		t.idle = ch
	}
	return ch
}
