package run

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"wagate/reports"
	"wagate/simulator/metrics"
)

func TestTheGatewayIsScrapedEveryFiveSecondsOrEverySecondInARunWithFaults(t *testing.T) {
	for _, tc := range []struct {
		faults int
		want   time.Duration
	}{
		{faults: 0, want: 5 * time.Second},
		{faults: 1, want: time.Second},
		{faults: 12, want: time.Second},
	} {
		if got := gatewayScrapeInterval(tc.faults); got != tc.want {
			t.Errorf("%d faults: every %v, want %v", tc.faults, got, tc.want)
		}
	}
}

// The metrics probe is sampled every second; it asks the gateway only when a scrape is due, and
// the series point still gets the last reading.
func TestTheMetricsProbeScrapesTheGatewayOnlyWhenAScrapeIsDue(t *testing.T) {
	for _, tc := range []struct {
		name  string
		every time.Duration
		want  int64 // scrapes over 11 samples one second apart (t = 0 s .. 10 s)
	}{
		{name: "every 5 s", every: 5 * time.Second, want: 3},
		{name: "every second", every: time.Second, want: 11},
		{name: "at every sample", every: 0, want: 11},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var scrapes atomic.Int64
			gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := scrapes.Add(1)
				fmt.Fprintf(w, "# TYPE go_goroutines gauge\ngo_goroutines %d\n", 100+n)
			}))
			defer gw.Close()
			reg := metrics.NewRegistry(nil)
			reg.DefineAll()
			at := time.Unix(1700000000, 0)
			// The sampling ticker's jitter: each sample a few ms off its second.
			jitter := []time.Duration{0, 3 * time.Millisecond, -2 * time.Millisecond, 5 * time.Millisecond}
			i := 0
			g := &gatewayMetricsProbe{reg: reg, hc: gw.Client(), url: gw.URL, every: tc.every,
				now: func() time.Time { return at.Add(time.Duration(i)*time.Second + jitter[i%len(jitter)]) }}
			for i = 0; i <= 10; i++ {
				g.sample(context.Background())
			}
			if got := scrapes.Load(); got != tc.want {
				t.Fatalf("%d scrapes in 11 samples, want %d", got, tc.want)
			}
			var p reports.SeriesPoint
			g.closeInterval(context.Background(), &p)
			if want := 100 + int(tc.want); p.Goroutines != want {
				t.Fatalf("series point goroutines %d, want the last reading %d", p.Goroutines, want)
			}
		})
	}
}
