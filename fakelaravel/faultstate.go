package fakelaravel

import (
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"wagate/gateway/laravel"
)

// activeWindow is a FaultWindow placed in time: from is when it starts, to when it ends (zero:
// until the faults are replaced).
type activeWindow struct {
	FaultWindow
	from, to time.Time
}

// covers reports whether the window is in effect at now for endpoint ("" matches any).
func (a *activeWindow) covers(now time.Time, endpoint string) bool {
	if now.Before(a.from) || (!a.to.IsZero() && !now.Before(a.to)) {
		return false
	}
	return endpoint == "" || len(a.Endpoints) == 0 || slices.Contains(a.Endpoints, endpoint)
}

// flatWindows converts the flat, always-on fields of f to the windows they mean.
func flatWindows(f Faults) []FaultWindow {
	var out []FaultWindow
	if f.ErrorRate > 0 {
		w := FaultWindow{Kind: FaultStatus, Rate: f.ErrorRate, Status: f.ErrorStatus}
		if w.Status == 0 {
			w.Status = http.StatusInternalServerError
		}
		if w.Status == http.StatusTooManyRequests || w.Status == http.StatusServiceUnavailable {
			w.RetryAfterS = int64(max(f.RetryAfterS, 1))
		}
		out = append(out, w)
	}
	if f.ExtraLatencyMS > 0 {
		out = append(out, FaultWindow{Kind: FaultLatency, Rate: 1, LatencyMS: f.ExtraLatencyMS})
	}
	if f.LostResponseRate > 0 {
		out = append(out, FaultWindow{Kind: FaultLostResponse, Rate: f.LostResponseRate, LostResponseMode: f.LostResponseMode})
	}
	for _, d := range f.DownWindows {
		out = append(out, FaultWindow{Kind: FaultDown, StartAfterMS: d.StartAfterMS, DurationMS: d.DurationMS})
	}
	return out
}

// faultState holds the current faults, placed in time when they were set, and the random source
// of their draws. Safe for concurrent use.
type faultState struct {
	mu      sync.Mutex
	f       Faults
	windows []activeWindow
	rng     *rand.Rand
}

func newFaultState(f Faults, now time.Time, seed uint64) *faultState {
	fs := &faultState{rng: rand.New(rand.NewPCG(seed^0x51ed27, seed+1))}
	fs.set(f, now)
	return fs
}

// set replaces the faults; their windows count from now.
func (fs *faultState) set(f Faults, now time.Time) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.f = f
	fs.windows = fs.windows[:0]
	for _, w := range append(flatWindows(f), f.Windows...) {
		a := activeWindow{FaultWindow: w, from: now.Add(time.Duration(w.StartAfterMS) * time.Millisecond)}
		if w.DurationMS > 0 {
			a.to = a.from.Add(time.Duration(w.DurationMS) * time.Millisecond)
		}
		fs.windows = append(fs.windows, a)
	}
}

// get returns the faults as they were set.
func (fs *faultState) get() Faults {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f := fs.f
	f.DownWindows = slices.Clone(fs.f.DownWindows)
	f.Windows = slices.Clone(fs.f.Windows)
	return f
}

// down reports whether now falls in a down window, and when that next changes (zero when it
// never does).
func (fs *faultState) down(now time.Time) (bool, time.Time) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	isDown := false
	var next time.Time
	for i := range fs.windows {
		w := &fs.windows[i]
		if w.Kind != FaultDown {
			continue
		}
		if w.covers(now, "") {
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

// hit draws whether window w affects this request.
func (fs *faultState) hit(w *activeWindow) bool { return fs.rng.Float64() < w.Rate }

// injectedStatus is an answer decided by a status window.
type injectedStatus struct {
	status int
	header http.Header
}

// drawStatus decides whether this request is answered by a status window instead of being
// processed: the first window in effect whose draw hits answers.
func (fs *faultState) drawStatus(now time.Time, endpoint string) *injectedStatus {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for i := range fs.windows {
		w := &fs.windows[i]
		if w.Kind != FaultStatus || !w.covers(now, endpoint) || !fs.hit(w) {
			continue
		}
		e := &injectedStatus{status: w.Status, header: http.Header{}}
		if w.RetryAfterS > 0 {
			ra := strconv.FormatInt(w.RetryAfterS, 10)
			if w.RetryAfterHTTPDate {
				ra = now.Add(time.Duration(w.RetryAfterS) * time.Second).UTC().Format(http.TimeFormat)
			}
			e.header.Set("Retry-After", ra)
		}
		if w.Status < 400 {
			loc := w.Location
			if loc == "" {
				loc = DefaultRedirectLocation
			}
			e.header.Set("Location", loc)
		}
		return e
	}
	return nil
}

// drawLatency returns the extra worker time of the latency windows whose draw hits, and how
// many hit.
func (fs *faultState) drawLatency(now time.Time, endpoint string) (time.Duration, int) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var d time.Duration
	n := 0
	for i := range fs.windows {
		w := &fs.windows[i]
		if w.Kind == FaultLatency && w.covers(now, endpoint) && fs.hit(w) {
			d += time.Duration(w.LatencyMS) * time.Millisecond
			n++
		}
	}
	return d, n
}

// drawLost decides whether an applied write loses its response, and how.
func (fs *faultState) drawLost(now time.Time, endpoint string) (bool, string) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for i := range fs.windows {
		w := &fs.windows[i]
		if w.Kind == FaultLostResponse && w.covers(now, endpoint) && fs.hit(w) {
			if w.LostResponseMode == "" {
				return true, LostResponseClose
			}
			return true, w.LostResponseMode
		}
	}
	return false, ""
}

// drawGarbage decides whether an applied write is answered with an undecodable body.
func (fs *faultState) drawGarbage(now time.Time, endpoint string) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for i := range fs.windows {
		w := &fs.windows[i]
		if w.Kind == FaultGarbageBody && w.covers(now, endpoint) && fs.hit(w) {
			return true
		}
	}
	return false
}

// itemFate is what the item faults decide for one batch item.
type itemFate int8

const (
	itemApplied     itemFate = iota // applied as usual
	itemRefused                     // not applied, named in errors (refuse_items)
	itemUnaccounted                 // not applied, counted in failed only (unaccounted_failures)
)

// planBatch decides the fate of each item of a batch (by its session id) under the refuse_items
// and unaccounted_failures windows in effect; nil when every item is applied as usual.
func (fs *faultState) planBatch(now time.Time, endpoint string, sessionIDs []string) []itemFate {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var fates []itemFate
	mark := func(i int, f itemFate) {
		if fates == nil {
			fates = make([]itemFate, len(sessionIDs))
		}
		fates[i] = f
	}
	for wi := range fs.windows {
		w := &fs.windows[wi]
		if w.Kind != FaultRefuseItems || !w.covers(now, endpoint) {
			continue
		}
		for i, id := range sessionIDs {
			if (fates == nil || fates[i] == itemApplied) && w.RefusesSession(id) && fs.hit(w) {
				mark(i, itemRefused)
			}
		}
	}
	for wi := range fs.windows {
		w := &fs.windows[wi]
		if w.Kind != FaultUnaccountedFailures || !w.covers(now, endpoint) || !fs.hit(w) {
			continue
		}
		var open []int
		for i := range sessionIDs {
			if fates == nil || fates[i] == itemApplied {
				open = append(open, i)
			}
		}
		fs.rng.Shuffle(len(open), func(a, b int) { open[a], open[b] = open[b], open[a] })
		for _, i := range open[:min(len(open), max(w.Items, 1))] {
			mark(i, itemUnaccounted)
		}
	}
	return fates
}

// drawRefusal decides whether a refuse_items window refuses a legacy write for sessionID.
func (fs *faultState) drawRefusal(now time.Time, endpoint, sessionID string) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for i := range fs.windows {
		w := &fs.windows[i]
		if w.Kind == FaultRefuseItems && w.covers(now, endpoint) && w.RefusesSession(sessionID) && fs.hit(w) {
			return true
		}
	}
	return false
}

// withheldItems are the batch items the item faults keep from being applied: refused ones are
// named in the answer's errors, unaccounted ones only counted in its failed.
type withheldItems struct {
	refused     []laravel.ItemError
	unaccounted int
}

// garbled returns an undecodable version of a JSON body: its first half.
func garbled(body []byte) []byte {
	if len(body) < 2 {
		return []byte(`{"success":`)
	}
	return body[:len(body)/2]
}
