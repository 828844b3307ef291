package outbox

import (
	"context"
	"math/rand/v2"
	"slices"
	"time"

	"wagate/gateway/event"
)

// Waiting for room. An Append that finds the outbox full (or Redis not answering) queues itself
// and waits; it never polls Redis itself. One poller per Outbox, running only while appends wait,
// reads the stream length every RoomPoll (with jitter, so gateways sharing a Redis do not poll in
// step) and wakes as many waiters as there is room; this gateway's own Ack and DeadLetter wake
// one waiter per entry they removed.
//
// Room goes to priority states first. Waiters queue by their event's priority: a session's final
// states (connected, disconnected, logged_out) are woken before every QR code, pending status and
// message that waited longer, oldest first within a priority. An append that arrives while others
// of its priority or a higher one wait queues behind them instead of taking room that freed up
// between the poller's ticks (firstTry). A woken waiter that loses the race for the room queues
// again at the head of its priority. Issue 19: with one FIFO queue, a full outbox kept sessions'
// final states behind newer QR codes until their 5 s deadline refused them, again and again.

// roomCheckTimeout bounds the poller's one Redis call per tick.
const roomCheckTimeout = time.Second

// roomQueue holds the waiting appends' channels by priority, oldest first within each.
type roomQueue struct {
	high, normal []chan struct{}
}

// add queues ch behind the waiters of its priority, or at their head (a woken waiter that lost
// the race: it was the oldest).
func (q *roomQueue) add(ch chan struct{}, p event.Priority, head bool) {
	list := &q.normal
	if p >= event.PriorityHigh {
		list = &q.high
	}
	if head {
		*list = slices.Insert(*list, 0, ch)
	} else {
		*list = append(*list, ch)
	}
}

// remove drops ch (a waiter that gave up).
func (q *roomQueue) remove(ch chan struct{}) {
	for _, list := range []*[]chan struct{}{&q.high, &q.normal} {
		if i := slices.Index(*list, ch); i >= 0 {
			*list = slices.Delete(*list, i, i+1)
			return
		}
	}
}

// take removes and returns up to n waiters to wake: priority ones first, oldest first.
func (q *roomQueue) take(n int64) []chan struct{} {
	var woken []chan struct{}
	for _, list := range []*[]chan struct{}{&q.high, &q.normal} {
		k := int(min(n-int64(len(woken)), int64(len(*list))))
		if k <= 0 {
			continue
		}
		woken = append(woken, (*list)[:k]...)
		*list = slices.Delete(*list, 0, k)
	}
	return woken
}

func (q *roomQueue) len() int { return len(q.high) + len(q.normal) }

// firstTry decides whether an append of priority p may try Redis at once (true) or must queue
// behind the waiting appends first: those of its priority came first, those of a higher one
// matter more. Only waiters of a lower priority are passed.
func firstTry(p event.Priority, waitingHigh, waitingNormal int) bool {
	if p >= event.PriorityHigh {
		return waitingHigh == 0
	}
	return waitingHigh == 0 && waitingNormal == 0
}

// mayTryAtOnce reports firstTry for p against the appends waiting now.
func (o *Outbox) mayTryAtOnce(p event.Priority) bool {
	o.wmu.Lock()
	defer o.wmu.Unlock()
	return firstTry(p, len(o.waitq.high), len(o.waitq.normal))
}

// waitForRoom queues a waiter of priority p (at the head of its priority when it was woken and
// lost the race for the room) and returns its channel, closed when it should try again; the
// poller starts when it is not running.
func (o *Outbox) waitForRoom(p event.Priority, again bool) chan struct{} {
	ch := make(chan struct{})
	o.wmu.Lock()
	o.waitq.add(ch, p, again)
	if !o.polling {
		o.polling = true
		go o.pollRoom()
	}
	o.wmu.Unlock()
	return ch
}

// stopWaiting removes a waiter that gave up.
func (o *Outbox) stopWaiting(ch chan struct{}) {
	o.wmu.Lock()
	defer o.wmu.Unlock()
	o.waitq.remove(ch)
}

// wake wakes up to n waiters: priority states first, oldest first within a priority.
func (o *Outbox) wake(n int64) {
	o.wmu.Lock()
	defer o.wmu.Unlock()
	for _, ch := range o.waitq.take(n) {
		close(ch)
	}
}

// waiting returns how many appends wait for room.
func (o *Outbox) waiting() int {
	o.wmu.Lock()
	defer o.wmu.Unlock()
	return o.waitq.len()
}

// pollRoom checks the stream length every RoomPoll (jittered +-20%) while appends wait, and wakes
// as many as there is room for. A Redis that does not answer wakes nobody; the waiters' deadlines
// run on.
func (o *Outbox) pollRoom() {
	for {
		d := time.Duration(float64(o.cfg.RoomPoll) * (0.8 + 0.4*rand.Float64()))
		time.Sleep(d)
		o.wmu.Lock()
		if o.waitq.len() == 0 {
			o.polling = false
			o.wmu.Unlock()
			return
		}
		o.wmu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), roomCheckTimeout)
		n, err := o.rdb.XLen(ctx, o.cfg.Stream).Result()
		cancel()
		o.roomChecks.Add(1)
		if err != nil {
			continue
		}
		o.lastLen.Store(n)
		if free := o.cfg.Max - n; free > 0 {
			o.wake(free)
		}
	}
}
