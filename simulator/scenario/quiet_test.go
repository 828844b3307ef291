package scenario

import (
	"strings"
	"testing"
	"time"
)

// A quiet window is counted from the users' start and must hold one whole series interval,
// wherever the intervals fall.
func TestAQuietWindowHoldsAWholeSeriesInterval(t *testing.T) {
	const users = `
scenarios:
  s: {executor: constant-vus, vus: 1, duration: 10m}
seriesInterval: 5s
`
	for _, tc := range []struct {
		name, quiet, wantErr string
	}{
		{"two intervals", "quiet: {at: 6m, duration: 10s}", ""},
		{"a minute", "quiet: {at: 6m, duration: 55s}", ""},
		{"shorter than two intervals", "quiet: {at: 6m, duration: 9s}", "f.yaml:5: quiet: at can't be negative and duration must be at least two series intervals (10s)"},
		{"before the start", "quiet: {at: -1s, duration: 1m}", "quiet: at can't be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse("f.yaml", []byte(users+tc.quiet+"\n"), nil)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if f.Quiet == nil {
					t.Fatal("no quiet window")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("got %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestAQuietWindowCoversItsStartButNotItsEnd(t *testing.T) {
	q := &Quiet{At: Duration(6 * time.Minute), Duration: Duration(55 * time.Second)}
	for _, tc := range []struct {
		at   time.Duration
		want bool
	}{
		{6*time.Minute - time.Nanosecond, false},
		{6 * time.Minute, true},
		{6*time.Minute + 54*time.Second, true},
		{6*time.Minute + 55*time.Second, false},
	} {
		if got := q.Covers(tc.at); got != tc.want {
			t.Errorf("Covers(%s) = %v, want %v", tc.at, got, tc.want)
		}
	}
	var none *Quiet
	if none.Covers(6 * time.Minute) {
		t.Error("no window covers nothing")
	}
}
