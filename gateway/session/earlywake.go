package session

import (
	"math/rand/v2"
	"sync"
	"time"
)

// Early wakes of reconnects waiting in a backoff (issue 19, whatsapp-down). A session whose dials
// to WhatsApp fail backs off 1 s, 2 s, 4 s... up to maxRedeliveryBackoff; two outages close
// together left sessions waiting 16 s after WhatsApp was back while every other session had long
// reconnected. A login of any session of this gateway is evidence that WhatsApp accepts dials
// again, so it wakes the reconnects waiting after a failed dial that still wait longer than
// wakeBound: each then waits a random part of wakeWindow (10,000 sessions do not dial in the same
// instant) and still takes a connect slot; one whose dial fails again backs off as before (its
// backoff doubles). A reconnect after a connection cut before its login (an outage of its device)
// is not woken: another session's login says nothing about that device, and each wake would cost
// it one more cut and a doubled backoff (the first campaign with wakes for these too failed
// recovery in 2 of 12 partial-outage schedules that had passed without).

const (
	// wakeBound is the wait left below which a login does not wake a reconnect: it is due soon
	// anyway.
	wakeBound = 2 * time.Second
	// wakeWindow is the window over which the reconnects a login wakes are spread.
	wakeWindow = time.Second
)

// earlyWake says whether a login at now wakes a reconnect due at due and how long it then waits:
// not when it is due within wakeBound anyway; else jitter, which callers draw uniformly from
// [0, wakeWindow), never past the reconnect's own due time.
func earlyWake(now, due time.Time, jitter time.Duration) (time.Duration, bool) {
	left := due.Sub(now)
	if left <= wakeBound {
		return 0, false
	}
	return min(max(jitter, 0), left), true
}

// backoffWaits holds the reconnects waiting in a backoff a login may wake.
type backoffWaits struct {
	mu      sync.Mutex
	waits   map[*backoffWait]struct{}
	pending bool // a wait longer than wakeBound was registered since the last wake pass
}

// backoffWait is one reconnect's timer and when it fires.
type backoffWait struct {
	timer *time.Timer
	due   time.Time
	woken bool // moved earlier by a login
}

// after runs f after wait (f is told whether a login woke it), registered so that a login may
// wake it unless wakeable is false.
func (b *backoffWaits) after(wait time.Duration, wakeable bool, f func(woken bool)) {
	if !wakeable {
		time.AfterFunc(wait, func() { f(false) })
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.waits == nil {
		b.waits = make(map[*backoffWait]struct{})
	}
	w := &backoffWait{due: time.Now().Add(wait)}
	w.timer = time.AfterFunc(wait, func() { f(b.fired(w)) })
	b.waits[w] = struct{}{}
	if wait > wakeBound {
		b.pending = true
	}
}

// fired removes w when its timer fired and reports whether a login had woken it.
func (b *backoffWaits) fired(w *backoffWait) (woken bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.waits, w)
	return w.woken
}

// loginSeen wakes the registered reconnects due later than wakeBound from now (earlyWake); it
// returns how many it woke. Cheap when no long wait was registered since its last pass, so a
// reconnect wave's logins do not each walk every wait.
func (b *backoffWaits) loginSeen() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.pending {
		return 0
	}
	b.pending = false
	now := time.Now()
	woke := 0
	for w := range b.waits {
		wait, ok := earlyWake(now, w.due, rand.N(wakeWindow))
		if !ok || !w.timer.Stop() {
			continue // due soon anyway, or already firing (fired removes it)
		}
		w.timer.Reset(wait)
		w.due, w.woken = now.Add(wait), true
		woke++
	}
	return woke
}
