package user

import (
	"context"
	"math/rand/v2"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"wagate/simulator/cpuset"
	"wagate/simulator/metrics"
)

// BenchmarkTheRunsEndWithManyPollers is the run's end as the load generator lives it: 5000
// pollers (Poller.Every, one think time of 500 ms: 10,000 polls/s) on one P, as the pinned
// simulator runs, then the run's stop. It reports how many of the goroutine delays (Go's
// /sched/latencies, which the report's validity rule reads) recorded from the stop until every
// poller ended were beyond cpuset.DelayLimit, and the longest, beside the same figures over as
// long a window of polling before the stop: a stop that wakes every poller at once makes them all
// runnable together.
//
//	go test ./simulator/user -run '^$' -bench TheRunsEnd -benchtime 5x
func BenchmarkTheRunsEndWithManyPollers(b *testing.B) {
	const pollers = 5000
	const think = 500 * time.Millisecond
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	srv := rawServer(b, okAnswer(`{"status":"connected"}`), 0)
	api := NewAPI(srv, "tok", &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxConnsPerHost: 400}}, metrics.NewRegistry(nil))
	var over, samples, steadyOver, steadySamples float64
	var longest, steadyLongest time.Duration
	count := func(d cpuset.Histogram, over, samples *float64) {
		for k, n := range d.Counts {
			*samples += float64(n)
			if d.Buckets[k] >= cpuset.DelayLimit.Seconds() {
				*over += float64(n)
			}
		}
	}
	for i := 0; i < b.N; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for j := range pollers {
			first := time.Duration(rand.Int64N(int64(think)))
			wg.Go(func() {
				p := api.NewPoller(ctx, EndpointStatus, "s", nil)
				defer p.Close()
				p.Every(ctx, first, NewPace(think, uint64(i), uint64(j)), stop)
			})
		}
		time.Sleep(2 * think) // every poller polling
		steady := cpuset.ReadGoDelays()
		time.Sleep(think + think/10) // as long as the end takes at most
		before := cpuset.ReadGoDelays()
		s := before.Sub(steady).Sched
		count(s, &steadyOver, &steadySamples)
		steadyLongest = max(steadyLongest, s.Max())
		close(stop)
		wg.Wait()
		d := cpuset.ReadGoDelays().Sub(before).Sched
		cancel()
		count(d, &over, &samples)
		longest = max(longest, d.Max())
	}
	n := float64(b.N)
	b.ReportMetric(over/n, "end-delays>1ms")
	b.ReportMetric(samples/n, "end-delays")
	b.ReportMetric(float64(longest)/float64(time.Millisecond), "end-longest-ms")
	b.ReportMetric(steadyOver/n, "steady-delays>1ms")
	b.ReportMetric(steadySamples/n, "steady-delays")
	b.ReportMetric(float64(steadyLongest)/float64(time.Millisecond), "steady-longest-ms")
}
