package run

import (
	"testing"
	"time"

	"wagate/fakelaravel"
	"wagate/reports"
	"wagate/simulator/metrics"
)

// laravelCounters are fakelaravel's cumulative counters after uptime seconds with requests status
// batches answered 200 and failed answered 503.
func laravelCounters(uptime float64, requests, failed int64) *fakelaravel.Stats {
	return &fakelaravel.Stats{UptimeSeconds: uptime, Endpoints: map[string]fakelaravel.EndpointStats{
		fakelaravel.EndpointStatusBatch: {Requests: requests, StatusCodes: map[string]int64{"200": requests - failed, "503": failed}},
	}}
}

func newLaravelRequestsProbe(warmup time.Duration) *laravelRequestsProbe {
	reg := metrics.NewRegistry(nil)
	reg.DefineAll()
	return &laravelRequestsProbe{reg: reg, warmup: warmup, start: time.Now().Add(-time.Minute)}
}

func TestLaravelRequestsProbeTurnsAnIntervalsCountersIntoRequestsByEndpoint(t *testing.T) {
	l := newLaravelRequestsProbe(0)
	p := reports.SeriesPoint{LaravelRequestsPerMin: map[string]float64{}}
	l.record(laravelCounters(10, 100, 0), laravelCounters(20, 130, 3), &p)

	if got := l.reg.Total("laravel_reqs", nil); got != 30 {
		t.Errorf("laravel_reqs = %v, want the 30 requests of the interval", got)
	}
	if got := p.LaravelRequestsPerMin["POST /api/whatsapp/status/batch"]; got != 180 {
		t.Errorf("the point's status batch rate = %v/min, want 30 requests in 10 s = 180/min", got)
	}
	if got := l.perMinute(); got != 180 {
		t.Errorf("perMinute = %v, want 180", got)
	}
}

func TestLaravelRequestsProbeMeanRateCountsOnlyIntervalsAfterTheWarmupWhileUsersRun(t *testing.T) {
	counted := newLaravelRequestsProbe(0)
	counted.record(laravelCounters(0, 0, 0), laravelCounters(10, 10, 0), &reports.SeriesPoint{})
	counted.record(laravelCounters(10, 10, 0), laravelCounters(20, 30, 0), &reports.SeriesPoint{})
	counted.endOfUsers()
	counted.record(laravelCounters(20, 30, 0), laravelCounters(30, 1030, 0), &reports.SeriesPoint{})
	if got, ok := counted.meanRate(); !ok || got != 90 {
		t.Errorf("mean rate = %v (ok %v), want (60+120)/2 = 90/min: the interval after the users ended does not count", got, ok)
	}

	warming := newLaravelRequestsProbe(time.Hour)
	warming.record(laravelCounters(0, 0, 0), laravelCounters(10, 10, 0), &reports.SeriesPoint{})
	if got, ok := warming.meanRate(); ok {
		t.Errorf("mean rate during the warmup = %v, want none", got)
	}
}

func TestLaravelRequestsProbeLeavesAWindowTooShortForARateToTheNextInterval(t *testing.T) {
	l := newLaravelRequestsProbe(0)
	l.last = laravelCounters(10, 100, 0)
	// The read after a late one: 20 ms and one request later, a rate of 3000/min if recorded.
	late := reports.SeriesPoint{}
	l.advance(laravelCounters(10.02, 101, 0), &late)
	if late.LaravelRequestsPerMin != nil {
		t.Errorf("a 20 ms window was recorded as %v", late.LaravelRequestsPerMin)
	}
	next := reports.SeriesPoint{}
	l.advance(laravelCounters(12, 104, 0), &next)
	if got := next.LaravelRequestsPerMin["POST /api/whatsapp/status/batch"]; got != 120 {
		t.Errorf("the next interval's rate = %v/min, want its 4 requests over 2 s = 120/min (the short window's request included)", got)
	}
	if got := l.reg.Total("laravel_reqs", nil); got != 4 {
		t.Errorf("laravel_reqs = %v, want 4: no request lost or counted twice", got)
	}
}
