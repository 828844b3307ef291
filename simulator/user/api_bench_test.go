package user

import (
	"context"
	"net/http"
	"testing"

	"wagate/simulator/metrics"
)

// statusAnswer is a status answer of the real read's size (174 bytes).
const statusAnswer = `{"session_id":"u-000001","status":"connected","active":true,"connected":true,"paired":true,"has_qr":false,"version":4,"updated_at":"2026-11-27T14:05:06.123456789Z"}` + "\n"

// BenchmarkStatusPoll measures the simulator's side of one status poll as a user's poller makes
// it (request, answer, and the http_req_* recording) against a stand-in that answers the real
// status read's bytes, so the load generator's own cost per request is visible apart from the
// gateway's. The stand-in's (small) cost is in the figure too, the same in both benchmarks.
func BenchmarkStatusPoll(b *testing.B) {
	api, tags := benchAPI(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		p := api.NewPoller(context.Background(), EndpointStatus, "u-000001", tags)
		defer p.Close()
		for pb.Next() {
			if err := p.Poll(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkStatusPollNetHTTP is the same poll through net/http's client (the path the other
// calls take), the comparison for BenchmarkStatusPoll.
func BenchmarkStatusPollNetHTTP(b *testing.B) {
	api, tags := benchAPI(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := api.do(ctx, http.MethodGet, EndpointStatus, "/sessions/u-000001", nil, false, tags); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func benchAPI(b *testing.B) (*API, metrics.Tags) {
	// The stand-in answers from a fixed buffer without allocating (rawServer), so the figures are
	// mostly the client's own cost.
	base := rawServer(b, okAnswer(statusAnswer), 0)
	hc := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 64, MaxIdleConnsPerHost: 64}}
	b.Cleanup(hc.CloseIdleConnections)
	return NewAPI(base, "test-token-0123456789", hc, metrics.NewRegistry(nil)), metrics.Tags{"scenario": "users"}
}
