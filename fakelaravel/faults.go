package fakelaravel

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Faults are the misbehaviours fakelaravel injects into /api requests. They are set at start
// (Config.Faults, command-line flags) and replaced at runtime with PUT /_fake/faults
// (AdminClient.SetFaults). The zero value injects nothing.
type Faults struct {
	// ErrorRate is the probability in [0, 1] that an /api request is answered with ErrorStatus
	// instead of being processed. The error is decided on the worker after the bootstrap CPU, like
	// an exception, Laravel's maintenance mode or its throttle middleware would.
	ErrorRate float64 `json:"error_rate"`
	// ErrorStatus is 500, 503 or 429 (0 means 500).
	ErrorStatus int `json:"error_status,omitempty"`
	// RetryAfterS is the Retry-After header, in seconds, sent with a 429 or 503 (0 means 1).
	RetryAfterS int `json:"retry_after_s,omitempty"`
	// ExtraLatencyMS is wall time every /api request holds its worker for (a slow database or
	// downstream call, not CPU).
	ExtraLatencyMS int64 `json:"extra_latency_ms,omitempty"`
	// LostResponseRate is the probability in [0, 1] that a write which was applied (and committed)
	// loses its response: the connection is dropped, or the answer has no body (LostResponseMode).
	LostResponseRate float64 `json:"lost_response_rate"`
	// LostResponseMode is "close" (drop the connection without an answer, the default) or
	// "empty" (answer 200 with an empty body).
	LostResponseMode string `json:"lost_response_mode,omitempty"`
	// DownWindows are periods during which the server refuses connections, relative to the moment
	// the faults are set.
	DownWindows []DownWindow `json:"down_windows,omitempty"`
}

// DownWindow is one period of refused connections, starting StartAfterMS after the faults were
// set and lasting DurationMS.
type DownWindow struct {
	StartAfterMS int64 `json:"start_after_ms"`
	DurationMS   int64 `json:"duration_ms"`
}

// Lost-response modes.
const (
	LostResponseClose = "close"
	LostResponseEmpty = "empty"
)

// Validate reports the first fault setting that is out of range.
func (f Faults) Validate() error {
	switch {
	case f.ErrorRate < 0 || f.ErrorRate > 1:
		return fmt.Errorf("faults: error_rate %v outside [0, 1]", f.ErrorRate)
	case f.ErrorStatus != 0 && f.ErrorStatus != 500 && f.ErrorStatus != 503 && f.ErrorStatus != 429:
		return fmt.Errorf("faults: error_status %d is not 500, 503 or 429", f.ErrorStatus)
	case f.RetryAfterS < 0 || f.ExtraLatencyMS < 0:
		return fmt.Errorf("faults: negative retry_after_s or extra_latency_ms")
	case f.LostResponseRate < 0 || f.LostResponseRate > 1:
		return fmt.Errorf("faults: lost_response_rate %v outside [0, 1]", f.LostResponseRate)
	case f.LostResponseMode != "" && f.LostResponseMode != LostResponseClose && f.LostResponseMode != LostResponseEmpty:
		return fmt.Errorf("faults: lost_response_mode %q is not %q or %q", f.LostResponseMode, LostResponseClose, LostResponseEmpty)
	}
	for _, w := range f.DownWindows {
		if w.StartAfterMS < 0 || w.DurationMS <= 0 {
			return fmt.Errorf("faults: down window %+v needs start_after_ms >= 0 and duration_ms > 0", w)
		}
	}
	return nil
}

// ParseDownWindows parses "START+DURATION[,START+DURATION...]" with Go durations, e.g.
// "10s+5s,1m+30s": down 10 s after start for 5 s, and 1 min after start for 30 s.
func ParseDownWindows(s string) ([]DownWindow, error) {
	var out []DownWindow
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		start, dur, ok := strings.Cut(part, "+")
		if !ok {
			return nil, fmt.Errorf("down window %q: want START+DURATION", part)
		}
		a, err := time.ParseDuration(strings.TrimSpace(start))
		if err != nil {
			return nil, fmt.Errorf("down window %q: %w", part, err)
		}
		d, err := time.ParseDuration(strings.TrimSpace(dur))
		if err != nil {
			return nil, fmt.Errorf("down window %q: %w", part, err)
		}
		out = append(out, DownWindow{StartAfterMS: a.Milliseconds(), DurationMS: d.Milliseconds()})
	}
	return out, nil
}

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
