package outbox

import (
	"context"
	"math/rand/v2"
	"slices"
	"time"
)

// Waiting for room. An Append that finds the outbox full (or Redis not answering) queues itself
// and waits; it never polls Redis itself. One poller per Outbox, running only while appends wait,
// reads the stream length every RoomPoll (with jitter, so gateways sharing a Redis do not poll in
// step) and wakes as many waiters as there is room; this gateway's own Ack and DeadLetter wake
// one waiter per entry they removed. A woken waiter that loses the race for the room queues again.

// roomCheckTimeout bounds the poller's one Redis call per tick.
const roomCheckTimeout = time.Second

// waitForRoom queues a waiter and returns its channel, closed when it should try again; the
// poller starts when it is not running.
func (o *Outbox) waitForRoom() chan struct{} {
	ch := make(chan struct{})
	o.wmu.Lock()
	o.waitq = append(o.waitq, ch)
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
	if i := slices.Index(o.waitq, ch); i >= 0 {
		o.waitq = slices.Delete(o.waitq, i, i+1)
	}
}

// wake wakes up to n waiters, oldest first.
func (o *Outbox) wake(n int64) {
	o.wmu.Lock()
	defer o.wmu.Unlock()
	k := int(min(n, int64(len(o.waitq))))
	for _, ch := range o.waitq[:k] {
		close(ch)
	}
	o.waitq = slices.Delete(o.waitq, 0, k)
}

// waiting returns how many appends wait for room.
func (o *Outbox) waiting() int {
	o.wmu.Lock()
	defer o.wmu.Unlock()
	return len(o.waitq)
}

// pollRoom checks the stream length every RoomPoll (jittered +-20%) while appends wait, and wakes
// as many as there is room for. A Redis that does not answer wakes nobody; the waiters' deadlines
// run on.
func (o *Outbox) pollRoom() {
	for {
		d := time.Duration(float64(o.cfg.RoomPoll) * (0.8 + 0.4*rand.Float64()))
		time.Sleep(d)
		o.wmu.Lock()
		if len(o.waitq) == 0 {
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
