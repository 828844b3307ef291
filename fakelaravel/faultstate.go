package fakelaravel

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// interval is an absolute down window.
type interval struct{ from, to time.Time }

// faultState holds the current faults and the absolute down windows derived from them.
type faultState struct {
	mu      sync.Mutex
	f       Faults
	setAt   time.Time
	windows []interval
	rng     *rand.Rand
}

func newFaultState(f Faults, now time.Time, seed uint64) *faultState {
	fs := &faultState{rng: rand.New(rand.NewPCG(seed^0x51ed27, seed+1))}
	fs.set(f, now)
	return fs
}

func (fs *faultState) set(f Faults, now time.Time) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.f, fs.setAt = f, now
	fs.windows = fs.windows[:0]
	for _, w := range f.DownWindows {
		from := now.Add(time.Duration(w.StartAfterMS) * time.Millisecond)
		fs.windows = append(fs.windows, interval{from, from.Add(time.Duration(w.DurationMS) * time.Millisecond)})
	}
}

func (fs *faultState) get() Faults {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f := fs.f
	f.DownWindows = append([]DownWindow(nil), fs.f.DownWindows...)
	return f
}

// down reports whether now falls in a down window, and when the state next changes (zero when
// it never does).
func (fs *faultState) down(now time.Time) (bool, time.Time) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	isDown := false
	var next time.Time
	for _, w := range fs.windows {
		if !now.Before(w.from) && now.Before(w.to) {
			isDown = true
		}
		for _, t := range []time.Time{w.from, w.to} {
			if t.After(now) && (next.IsZero() || t.Before(next)) {
				next = t
			}
		}
	}
	return isDown, next
}

// injectedError is an error answer decided by the error-rate fault.
type injectedError struct {
	status     int
	retryAfter string
}

// drawError decides whether this request fails with an injected error.
func (fs *faultState) drawError() *injectedError {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.f.ErrorRate <= 0 || fs.rng.Float64() >= fs.f.ErrorRate {
		return nil
	}
	e := &injectedError{status: fs.f.ErrorStatus}
	if e.status == 0 {
		e.status = http.StatusInternalServerError
	}
	if e.status == http.StatusTooManyRequests || e.status == http.StatusServiceUnavailable {
		e.retryAfter = strconv.Itoa(max(fs.f.RetryAfterS, 1))
	}
	return e
}

// drawLost decides whether an applied write loses its response, and how.
func (fs *faultState) drawLost() (bool, string) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.f.LostResponseRate <= 0 || fs.rng.Float64() >= fs.f.LostResponseRate {
		return false, ""
	}
	mode := fs.f.LostResponseMode
	if mode == "" {
		mode = LostResponseClose
	}
	return true, mode
}

func (fs *faultState) extraLatency() time.Duration {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return time.Duration(fs.f.ExtraLatencyMS) * time.Millisecond
}
