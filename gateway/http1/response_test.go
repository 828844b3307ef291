package http1

import (
	"net/http"
	"testing"
	"time"
)

// The Date header reads the clock's second in http.TimeFormat, formatted once per second.
func TestTheDateIsFormattedOncePerSecond(t *testing.T) {
	for _, tc := range []struct {
		name string
		at   time.Time
	}{
		{"a second", time.Date(2026, 12, 7, 17, 30, 0, 0, time.UTC)},
		{"later in the same second", time.Date(2026, 12, 7, 17, 30, 0, 999e6, time.UTC)},
		{"the next second, in another zone", time.Date(2026, 12, 7, 18, 30, 1, 0, time.FixedZone("CET", 3600))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, want := string(appendDate(nil, tc.at)), tc.at.UTC().Format(http.TimeFormat); got != want {
				t.Fatalf("appendDate = %q, want %q", got, want)
			}
		})
	}
	at := time.Date(2026, 12, 7, 17, 31, 0, 0, time.UTC)
	buf := make([]byte, 0, 64)
	appendDate(buf, at)
	if allocs := testing.AllocsPerRun(100, func() { buf = appendDate(buf[:0], at) }); allocs != 0 {
		t.Fatalf("%v allocations per Date within one second, want 0", allocs)
	}
}

// Header values are written as net/http writes them: blanks around trimmed, CR and LF as spaces.
func TestHeaderValuesAreSanitized(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                "plain",
		"  padded\t":           "padded",
		"a\r\nSet-Cookie: x=1": "a  Set-Cookie: x=1",
		"line\nbreak":          "line break",
		"":                     "",
	} {
		if got := string(appendValue(nil, in)); got != want {
			t.Errorf("appendValue(%q) = %q, want %q", in, got, want)
		}
	}
}
