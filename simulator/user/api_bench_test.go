package user

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"wagate/simulator/metrics"
)

// BenchmarkStatusPoll measures the simulator's side of one status poll (request, answer, and the
// http_req_* recording) against a gateway stand-in that answers like the real status read, so
// the load generator's own cost per request is visible apart from the gateway's.
func BenchmarkStatusPoll(b *testing.B) {
	body := `{"session_id":"u-000001","status":"connected","active":true,"connected":true,"paired":true,"has_qr":false,"version":4,"updated_at":"2026-11-27T14:05:06.123456789Z"}` + "\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}))
	b.Cleanup(srv.Close)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	reg := metrics.NewRegistry(nil)
	api := NewAPI(srv.URL, "test-token-0123456789", hc, reg)
	tags := metrics.Tags{"scenario": "users"}
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := api.PollStatus(ctx, "u-000001", tags); err != nil {
				b.Fatal(err)
			}
		}
	})
}
