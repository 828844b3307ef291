package metrics

import (
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"wagate/gateway/laravel"
)

// discardWriter is a reusable http.ResponseWriter that counts the answer's bytes.
type discardWriter struct {
	h http.Header
	n int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(int)             {}
func (w *discardWriter) Write(b []byte) (int, error) { w.n += len(b); return len(b), nil }

// BenchmarkScrape measures one GET /metrics as Prometheus (and the harness, every second) sends
// it, with Accept-Encoding: gzip, over the metric set a running batch gateway has: the API's
// latency series of the polled routes, Laravel's requests, sessions by status, the Go and process
// collectors. It reports the answer's bytes.
func BenchmarkScrape(b *testing.B) {
	m := New()
	m.RegisterSessions(func() (map[laravel.Status]int, int) {
		return map[laravel.Status]int{laravel.StatusConnected: 990, laravel.StatusPending: 10}, 990
	})
	for _, r := range []string{"/sessions/{id}", "/sessions/{id}/qr", "/sessions", "/sessions/{id}/messages"} {
		for _, code := range []int{200, 404} {
			m.ObserveAPI(r, http.MethodGet, code, time.Millisecond)
		}
	}
	obs := m.LaravelObserver()
	for _, e := range []string{"POST /api/qr/batch", "POST /api/whatsapp/status/batch", "GET /api/whatsapp/sessions/{id}"} {
		obs(e, 200, 20*time.Millisecond)
	}
	h := m.Handler()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	cpu0 := processCPU(b)
	for b.Loop() {
		clear(w.h)
		w.n = 0
		h.ServeHTTP(w, req)
	}
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(w.n), "bytes/scrape")
}

// processCPU is the CPU time this process has used (user and system, every thread): on a shared
// machine a scrape's CPU, not its wall time (which includes waiting for a CPU), is its cost.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
