package processtest

import (
	"fmt"
	"testing"
	"time"

	"wagate/fakelaravel"
)

// churnWindow is how long the benchmark's workload runs; churnEvery how often a device drops.
const (
	churnWindow = 30 * time.Second
	churnEvery  = 100 * time.Millisecond
)

// laravelCounts are fakelaravel's request and item counts of the QR and status batch endpoints.
func (w *world) laravelCounts() (requests, items int64) {
	w.t.Helper()
	st, err := w.admin.GetStats(w.ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, ep := range []string{fakelaravel.EndpointStatusBatch, fakelaravel.EndpointQRBatch} {
		requests += st.Endpoints[ep].Requests
		items += st.Endpoints[ep].Items
	}
	return requests, items
}

// The same workload against 1 and 3 replicas: n paired sessions (WAGATE_CLUSTER_TEST_SESSIONS,
// default 60), then for 30 s one device dropped by WhatsApp every 100 ms (each drop is a
// disconnected and a connected status for Laravel). Reported: Laravel requests per minute on the
// batch endpoints and items per request (each replica batches only its own sessions), and how
// long after the window every session was connected again. Run by make bench-cluster:
//
//	go test -run '^$' -bench LaravelRequestsPerReplicaCount -benchtime 1x ./gateway/cluster/processtest
func BenchmarkLaravelRequestsPerReplicaCount(b *testing.B) {
	for _, replicas := range []int{1, 3} {
		b.Run(fmt.Sprintf("replicas=%d", replicas), func(b *testing.B) {
			for range b.N {
				w := newWorld(b)
				names := []string{"gw-a", "gw-b", "gw-c"}[:replicas]
				w.startReady(names...)
				ids := w.pair(sessionCount(b))
				reqs0, items0 := w.laravelCounts()
				start := time.Now()
				drops := 0
				for time.Since(start) < churnWindow {
					id := ids[drops%len(ids)]
					if err := w.phones.Drop(w.ctx, w.jids[id]); err != nil {
						b.Fatalf("drop %s: %v", id, err)
					}
					drops++
					time.Sleep(churnEvery)
				}
				window := time.Since(start)
				w.waitConnected(ids, 60*time.Second)
				settled := time.Since(start) - window
				reqs, items := w.laravelCounts()
				reqs, items = reqs-reqs0, items-items0
				b.ReportMetric(float64(reqs)/window.Minutes(), "laravel-req/min")
				b.ReportMetric(float64(items)/float64(max(reqs, 1)), "items/req")
				b.ReportMetric(float64(drops), "drops")
				b.ReportMetric(settled.Seconds(), "settle-s")
				w.checkLaravelMatchesHolders(ids)
			}
		})
	}
}

// A replica of three holding the most sessions is SIGKILLed: reported, how long until every
// session it held was connected on the survivors (issue 16's bound: 15 s + 2 s per 1000
// sessions, with the default 10 s lease) and how many sessions moved.
//
//	WAGATE_CLUSTER_TEST_SESSIONS=300 go test -run '^$' -bench TakeoverAfterSIGKILL -benchtime 1x ./gateway/cluster/processtest
func BenchmarkTakeoverAfterSIGKILL(b *testing.B) {
	for range b.N {
		w := newWorld(b)
		w.startReady("gw-a", "gw-b", "gw-c")
		n := sessionCount(b)
		ids := w.pair(n)
		holders, _, err := w.holders()
		if err != nil {
			b.Fatal(err)
		}
		victim, moved := mostLoaded(byHolder(holders, ids))
		seq := w.lastSeq()
		killed := time.Now()
		w.replicas[victim].proc.Kill()
		w.waitMovedAndConnected("the SIGKILLed replica's sessions connected on the survivors", moved, victim, seq, takeoverBudget(n))
		b.ReportMetric(time.Since(killed).Seconds(), "takeover-s")
		b.ReportMetric(float64(len(moved)), "sessions-moved")
		b.ReportMetric(takeoverBudget(n).Seconds(), "budget-s")
	}
}
