package fakelaravel

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ParseFaultWindows parses the command-line form of fault windows (-fault-windows):
//
//	WINDOWS = WINDOW { ";" WINDOW }
//	WINDOW  = KIND [ "@" START "+" DURATION ] { "," KEY "=" VALUE }
//
// START and DURATION are Go durations counted from when the faults are set; without "@" the
// window starts at once, and a DURATION of 0 lasts until the faults are replaced. The keys are
// the FaultWindow fields: rate, status, retry_after (seconds, or a Go duration), http_date
// (true/false), location, latency (Go duration), mode (close/empty), items, sessions and
// endpoints ("|"-separated lists), fraction, seed. For example
//
//	status@10s+30s,rate=0.5,status=503,retry_after=2h;refuse_items,rate=1,sessions=s1|s2
//
// Values may not contain ",", ";" or "|". The result is not validated (Faults.Validate is).
func ParseFaultWindows(s string) ([]FaultWindow, error) {
	var out []FaultWindow
	for part := range strings.SplitSeq(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		w, err := parseFaultWindow(part)
		if err != nil {
			return nil, fmt.Errorf("fault window %q: %w", part, err)
		}
		out = append(out, w)
	}
	return out, nil
}

func parseFaultWindow(s string) (FaultWindow, error) {
	fields := strings.Split(s, ",")
	head := strings.TrimSpace(fields[0])
	kind, span, timed := strings.Cut(head, "@")
	w := FaultWindow{Kind: FaultKind(strings.TrimSpace(kind))}
	if !slices.Contains(FaultKinds, w.Kind) {
		return w, fmt.Errorf("kind %q is not one of %v", w.Kind, FaultKinds)
	}
	if timed {
		start, dur, err := parseSpan(span)
		if err != nil {
			return w, fmt.Errorf("%q: %w", span, err)
		}
		w.StartAfterMS, w.DurationMS = start.Milliseconds(), dur.Milliseconds()
	}
	for _, kv := range fields[1:] {
		key, value, ok := strings.Cut(kv, "=")
		if !ok {
			return w, fmt.Errorf("%q: want KEY=VALUE", kv)
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if err := w.setParam(key, value); err != nil {
			return w, fmt.Errorf("%s=%q: %w", key, value, err)
		}
	}
	return w, nil
}

// setParam sets the field of w that key names from its textual value.
func (w *FaultWindow) setParam(key, value string) error {
	var err error
	switch key {
	case "rate":
		w.Rate, err = parseFinite(value)
	case "fraction":
		w.SessionFraction, err = parseFinite(value)
	case "status":
		w.Status, err = strconv.Atoi(value)
	case "items":
		w.Items, err = strconv.Atoi(value)
	case "seed":
		w.SessionSeed, err = strconv.ParseUint(value, 10, 64)
	case "http_date":
		w.RetryAfterHTTPDate, err = strconv.ParseBool(value)
	case "retry_after":
		if w.RetryAfterS, err = strconv.ParseInt(value, 10, 64); err != nil {
			var d time.Duration
			d, err = time.ParseDuration(value)
			w.RetryAfterS = int64(d / time.Second)
		}
	case "latency":
		var d time.Duration
		d, err = time.ParseDuration(value)
		w.LatencyMS = d.Milliseconds()
	case "location":
		w.Location = value
	case "mode":
		w.LostResponseMode = value
	case "sessions":
		w.Sessions = splitList(value)
	case "endpoints":
		w.Endpoints = splitList(value)
	default:
		return fmt.Errorf("unknown key (want rate, status, retry_after, http_date, location, latency, mode, items, sessions, fraction, seed or endpoints)")
	}
	return err
}

func parseFinite(s string) (float64, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err == nil && (math.IsNaN(f) || math.IsInf(f, 0)) {
		return 0, fmt.Errorf("not a finite number")
	}
	return f, err
}

// splitList splits a "|"-separated list, dropping empty elements (nil when none is left).
func splitList(s string) []string {
	var out []string
	for e := range strings.SplitSeq(s, "|") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// FormatFaultWindows is the command-line form of ws, which ParseFaultWindows reads back.
func FormatFaultWindows(ws []FaultWindow) string {
	parts := make([]string, 0, len(ws))
	for _, w := range ws {
		var b strings.Builder
		b.WriteString(string(w.Kind))
		if w.StartAfterMS != 0 || w.DurationMS != 0 {
			fmt.Fprintf(&b, "@%v+%v", time.Duration(w.StartAfterMS)*time.Millisecond, time.Duration(w.DurationMS)*time.Millisecond)
		}
		param := func(key, value string) { fmt.Fprintf(&b, ",%s=%s", key, value) }
		if w.Rate != 0 {
			param("rate", strconv.FormatFloat(w.Rate, 'g', -1, 64))
		}
		if w.Status != 0 {
			param("status", strconv.Itoa(w.Status))
		}
		if w.RetryAfterS != 0 {
			param("retry_after", strconv.FormatInt(w.RetryAfterS, 10))
		}
		if w.RetryAfterHTTPDate {
			param("http_date", "true")
		}
		if w.Location != "" {
			param("location", w.Location)
		}
		if w.LatencyMS != 0 {
			param("latency", (time.Duration(w.LatencyMS) * time.Millisecond).String())
		}
		if w.LostResponseMode != "" {
			param("mode", w.LostResponseMode)
		}
		if w.Items != 0 {
			param("items", strconv.Itoa(w.Items))
		}
		if len(w.Sessions) > 0 {
			param("sessions", strings.Join(w.Sessions, "|"))
		}
		if w.SessionFraction != 0 {
			param("fraction", strconv.FormatFloat(w.SessionFraction, 'g', -1, 64))
		}
		if w.SessionSeed != 0 {
			param("seed", strconv.FormatUint(w.SessionSeed, 10))
		}
		if len(w.Endpoints) > 0 {
			param("endpoints", strings.Join(w.Endpoints, "|"))
		}
		parts = append(parts, b.String())
	}
	return strings.Join(parts, ";")
}
