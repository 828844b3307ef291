// Package lograte keeps a warning that can repeat once per event to at most one log line per
// interval. The gateway logs some failures per event (a cache write-through that timed out), and
// those come in storms exactly when an operator reads the log: at a 10,000-session reconnect the
// write-through warning alone was 34,311 lines in 20 s (make bench-scale, issue 18). A Limiter lets
// the first line through at once, holds back the ones that follow within the interval and says
// how many it held back on the next line it lets through; the failures' counters stay the record
// of how many there were.
package lograte

import (
	"sync"
	"time"
)

// Limiter lets one line through per Every. Set Every (a zero Every lets every line through) and,
// for tests, Now. A Limiter is safe for concurrent use and must not be copied after first use.
type Limiter struct {
	Every time.Duration
	Now   func() time.Time // nil: time.Now

	mu       sync.Mutex
	next     time.Time // no line before this
	heldBack int
}

// Allow reports whether a line may be logged now and, when it may, how many lines this Limiter
// held back since the last one it let through (to be logged with it).
func (l *Limiter) Allow() (ok bool, heldBack int) {
	now := time.Now
	if l.Now != nil {
		now = l.Now
	}
	t := now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if t.Before(l.next) {
		l.heldBack++
		return false, 0
	}
	heldBack, l.heldBack = l.heldBack, 0
	l.next = t.Add(l.Every)
	return true, heldBack
}
