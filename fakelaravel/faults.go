package fakelaravel

import (
	"fmt"
	"hash/fnv"
	"math"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Faults are the misbehaviours fakelaravel injects into /api requests. They are set at start
// (Config.Faults, command-line flags) and replaced at runtime with PUT /_fake/faults
// (AdminClient.SetFaults). The zero value injects nothing.
//
// The flat fields (ErrorRate ... DownWindows) are the original, always-on vocabulary and keep
// working; Windows is the timed one: every fault kind, each for a period counted from the moment
// the faults are set. Both may be combined.
type Faults struct {
	// ErrorRate is the probability in [0, 1] that an /api request is answered with ErrorStatus
	// instead of being processed. The error is decided on the worker after the bootstrap CPU, like
	// an exception, Laravel's maintenance mode or its throttle middleware would.
	ErrorRate float64 `json:"error_rate"`
	// ErrorStatus is any status in 300-599 (0 means 500); a 3xx carries DefaultRedirectLocation.
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
	// the faults are set (the same as Windows of kind "down").
	DownWindows []DownWindow `json:"down_windows,omitempty"`
	// Windows are timed faults of any kind, relative to the moment the faults are set.
	Windows []FaultWindow `json:"windows,omitempty"`
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

// FaultKind names what a FaultWindow injects.
type FaultKind string

// Fault kinds. "Applied" means the write was committed (and its answer stored under its
// Idempotency-Key, so a retry with the same key is answered from it).
const (
	// FaultStatus answers Status (any of 300-599) instead of processing the request: nothing is
	// applied. A 3xx carries a Location to another host (Location, default
	// DefaultRedirectLocation); any status may carry a Retry-After (RetryAfterS, as seconds or as
	// an HTTP-date with RetryAfterHTTPDate).
	FaultStatus FaultKind = "status"
	// FaultLatency holds the worker LatencyMS longer (a slow database or downstream call).
	FaultLatency FaultKind = "latency"
	// FaultDown refuses connections for the whole window (Rate does not apply).
	FaultDown FaultKind = "down"
	// FaultLostResponse applies the write, then drops the connection or answers 200 with an empty
	// body (LostResponseMode).
	FaultLostResponse FaultKind = "lost_response"
	// FaultGarbageBody applies the write, then answers 200 with a body that is not valid JSON.
	FaultGarbageBody FaultKind = "garbage_body"
	// FaultUnaccountedFailures applies a batch except Items of its items (default 1, at random),
	// and answers 200 with those counted in "failed" but not named in "errors". The items left out
	// are not applied. Batch endpoints only.
	FaultUnaccountedFailures FaultKind = "unaccounted_failures"
	// FaultRefuseItems refuses, item by item, the batch items of chosen sessions (Sessions, or the
	// SessionFraction chosen by SessionSeed, see RefusesSession): they are not applied and are
	// named in the 200's "errors" with RefusedItemError. A legacy write of a chosen session is
	// answered 422 naming session_id. These are the only items a gateway may legitimately
	// dead-letter; every one is recorded in Refusals.
	FaultRefuseItems FaultKind = "refuse_items"
)

// FaultKinds lists every fault kind.
var FaultKinds = []FaultKind{FaultStatus, FaultLatency, FaultDown, FaultLostResponse, FaultGarbageBody, FaultUnaccountedFailures, FaultRefuseItems}

// DefaultRedirectLocation is where an injected 3xx points when its window names no Location: a
// loopback address nothing listens on, on another host than the server.
const DefaultRedirectLocation = "http://127.0.0.2:1/elsewhere"

// RefusedItemError is the "error" of an item refused by FaultRefuseItems.
const RefusedItemError = "refused: this session does not accept updates (injected fault)"

// FaultWindow is one timed fault: Kind with its parameters, from StartAfterMS after the faults
// were set, for DurationMS (0: until the faults are replaced).
type FaultWindow struct {
	Kind         FaultKind `json:"kind"`
	StartAfterMS int64     `json:"start_after_ms"`
	DurationMS   int64     `json:"duration_ms"`
	// Rate is the probability in (0, 1] that a request (for refuse_items: an item of a chosen
	// session) in the window is affected. It must be 0 for down windows.
	Rate float64 `json:"rate,omitempty"`
	// Endpoints limits the window to these endpoint names (Endpoints); empty means all of them.
	Endpoints []string `json:"endpoints,omitempty"`

	// Status is the answer of a status window (300-599).
	Status int `json:"status,omitempty"`
	// RetryAfterS, when > 0, sends a Retry-After of that many seconds with a status answer.
	RetryAfterS int64 `json:"retry_after_s,omitempty"`
	// RetryAfterHTTPDate sends the Retry-After as an HTTP-date (now + RetryAfterS) instead.
	RetryAfterHTTPDate bool `json:"retry_after_http_date,omitempty"`
	// Location is the Location of a 3xx (default DefaultRedirectLocation); it must be an absolute
	// http(s) URL on a loopback host, so a client that wrongly follows it stays on this machine.
	Location string `json:"location,omitempty"`

	// LatencyMS is the extra worker time of a latency window (> 0).
	LatencyMS int64 `json:"latency_ms,omitempty"`
	// LostResponseMode is how a lost_response window loses the answer: "close" (default) or "empty".
	LostResponseMode string `json:"lost_response_mode,omitempty"`
	// Items is how many items of a batch an unaccounted_failures window leaves out (0 means 1;
	// never more than the batch has).
	Items int `json:"items,omitempty"`

	// Sessions are the sessions whose items a refuse_items window refuses.
	Sessions []string `json:"sessions,omitempty"`
	// SessionFraction in (0, 1] also chooses that share of all session ids, by a hash of the id
	// seeded with SessionSeed (see RefusesSession).
	SessionFraction float64 `json:"session_fraction,omitempty"`
	SessionSeed     uint64  `json:"session_seed,omitempty"`
}

// RefusesSession reports whether a refuse_items window chooses sessionID: it is listed in
// Sessions, or the seeded hash of the id falls in SessionFraction. The choice depends only on
// the window, so a campaign computes the same set the server refuses.
func (w FaultWindow) RefusesSession(sessionID string) bool {
	if slices.Contains(w.Sessions, sessionID) {
		return true
	}
	if w.SessionFraction <= 0 {
		return false
	}
	h := fnv.New64a()
	var seed [8]byte
	for i := range seed {
		seed[i] = byte(w.SessionSeed >> (8 * i))
	}
	h.Write(seed[:])
	h.Write([]byte(sessionID))
	return float64(h.Sum64())/math.MaxUint64 < w.SessionFraction
}

// String describes the window for messages, e.g. "status 503 from 10s for 30s".
func (w FaultWindow) String() string {
	what := string(w.Kind)
	if w.Kind == FaultStatus {
		what = fmt.Sprintf("status %d", w.Status)
	}
	span := "until replaced"
	if w.DurationMS > 0 {
		span = "for " + (time.Duration(w.DurationMS) * time.Millisecond).String()
	}
	return fmt.Sprintf("%s from %v %s", what, time.Duration(w.StartAfterMS)*time.Millisecond, span)
}

// Validate reports the first fault setting that is out of range.
func (f Faults) Validate() error {
	switch {
	case f.ErrorRate < 0 || f.ErrorRate > 1:
		return fmt.Errorf("faults: error_rate %v outside [0, 1]", f.ErrorRate)
	case f.ErrorStatus != 0 && (f.ErrorStatus < 300 || f.ErrorStatus > 599):
		return fmt.Errorf("faults: error_status %d is not an HTTP status in 300-599", f.ErrorStatus)
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
	for i, w := range f.Windows {
		if err := w.validate(); err != nil {
			return fmt.Errorf("faults: windows[%d]: %w", i, err)
		}
	}
	return nil
}

// validate reports the first parameter of w that is missing, out of range or does not apply to
// its kind.
func (w FaultWindow) validate() error {
	if !slices.Contains(FaultKinds, w.Kind) {
		return fmt.Errorf("kind %q is not one of %v", w.Kind, FaultKinds)
	}
	switch {
	case w.StartAfterMS < 0:
		return fmt.Errorf("%s: start_after_ms %d is negative", w, w.StartAfterMS)
	case w.DurationMS < 0:
		return fmt.Errorf("%s: duration_ms %d is negative (0 means until the faults are replaced)", w, w.DurationMS)
	case w.Kind == FaultDown && w.Rate != 0:
		return fmt.Errorf("%s: rate does not apply to down windows (every connection is refused); leave it 0", w)
	case w.Kind == FaultDown && len(w.Endpoints) > 0:
		return fmt.Errorf("%s: endpoints do not apply to down windows (connections are refused before any path is read)", w)
	case w.Kind != FaultDown && (w.Rate <= 0 || w.Rate > 1 || math.IsNaN(w.Rate)):
		return fmt.Errorf("%s: rate %v must be in (0, 1]: the probability that a request is affected", w, w.Rate)
	}
	for _, e := range w.Endpoints {
		if !slices.Contains(Endpoints, e) {
			return fmt.Errorf("%s: endpoint %q is not one of %v", w, e, Endpoints)
		}
	}
	only := func(field string, set bool, kinds ...FaultKind) error {
		if set && !slices.Contains(kinds, w.Kind) {
			return fmt.Errorf("%s: %s applies only to %v windows", w, field, kinds)
		}
		return nil
	}
	for _, err := range []error{
		only("status", w.Status != 0, FaultStatus),
		only("retry_after_s", w.RetryAfterS != 0, FaultStatus),
		only("retry_after_http_date", w.RetryAfterHTTPDate, FaultStatus),
		only("location", w.Location != "", FaultStatus),
		only("latency_ms", w.LatencyMS != 0, FaultLatency),
		only("lost_response_mode", w.LostResponseMode != "", FaultLostResponse),
		only("items", w.Items != 0, FaultUnaccountedFailures),
		only("sessions", len(w.Sessions) > 0, FaultRefuseItems),
		only("session_fraction", w.SessionFraction != 0, FaultRefuseItems),
		only("session_seed", w.SessionSeed != 0, FaultRefuseItems),
	} {
		if err != nil {
			return err
		}
	}
	switch w.Kind {
	case FaultStatus:
		switch {
		case w.Status < 300 || w.Status > 599:
			return fmt.Errorf("%s: status must be an HTTP status in 300-599", w)
		case w.RetryAfterS < 0:
			return fmt.Errorf("%s: retry_after_s %d is negative", w, w.RetryAfterS)
		case w.RetryAfterHTTPDate && w.RetryAfterS == 0:
			return fmt.Errorf("%s: retry_after_http_date needs retry_after_s > 0", w)
		case w.Location != "" && w.Status >= 400:
			return fmt.Errorf("%s: location applies only to a 3xx status", w)
		}
		if w.Location != "" {
			if err := checkRedirectLocation(w.Location); err != nil {
				return fmt.Errorf("%s: %w", w, err)
			}
		}
	case FaultLatency:
		if w.LatencyMS <= 0 {
			return fmt.Errorf("%s: latency_ms must be > 0", w)
		}
	case FaultLostResponse:
		if w.LostResponseMode != "" && w.LostResponseMode != LostResponseClose && w.LostResponseMode != LostResponseEmpty {
			return fmt.Errorf("%s: lost_response_mode %q is not %q or %q", w, w.LostResponseMode, LostResponseClose, LostResponseEmpty)
		}
	case FaultUnaccountedFailures:
		if w.Items < 0 {
			return fmt.Errorf("%s: items %d is negative", w, w.Items)
		}
	case FaultRefuseItems:
		switch {
		case len(w.Sessions) == 0 && w.SessionFraction == 0:
			return fmt.Errorf("%s: name the refused sessions (sessions) or a share of them (session_fraction)", w)
		case w.SessionFraction < 0 || w.SessionFraction > 1 || math.IsNaN(w.SessionFraction):
			return fmt.Errorf("%s: session_fraction %v outside [0, 1]", w, w.SessionFraction)
		}
	}
	return nil
}

// checkRedirectLocation accepts an absolute http(s) URL on a loopback host.
func checkRedirectLocation(loc string) error {
	u, err := url.Parse(loc)
	if err != nil {
		return fmt.Errorf("location %q: %w", loc, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("location %q must be an absolute http or https URL", loc)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("location %q must be on a loopback host (127.0.0.0/8, ::1 or localhost), so a client that follows it stays on this machine", loc)
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
		a, d, err := parseSpan(part)
		if err != nil {
			return nil, fmt.Errorf("down window %q: %w", part, err)
		}
		out = append(out, DownWindow{StartAfterMS: a.Milliseconds(), DurationMS: d.Milliseconds()})
	}
	return out, nil
}

// parseSpan parses "START+DURATION" with Go durations.
func parseSpan(s string) (start, dur time.Duration, err error) {
	a, d, ok := strings.Cut(s, "+")
	if !ok {
		return 0, 0, fmt.Errorf("want START+DURATION")
	}
	if start, err = time.ParseDuration(strings.TrimSpace(a)); err != nil {
		return 0, 0, fmt.Errorf("start: %w", err)
	}
	if dur, err = time.ParseDuration(strings.TrimSpace(d)); err != nil {
		return 0, 0, fmt.Errorf("duration: %w", err)
	}
	return start, dur, nil
}
