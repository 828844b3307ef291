package api_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"wagate/gateway/api"
	"wagate/gateway/metrics"
	"wagate/gateway/session"
	"wagate/gateway/session/sessiontest"
)

// benchWriter is a reusable http.ResponseWriter, so the benchmark measures the API, not a
// recorder's allocations.
type benchWriter struct {
	h    http.Header
	code int
	n    int
}

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) WriteHeader(code int)        { w.code = code }
func (w *benchWriter) Write(b []byte) (int, error) { w.n += len(b); return len(b), nil }

// Instructions per request, which unlike times do not move with the machine's load: run a read
// benchmark under callgrind for two iteration counts and divide the difference of the totals
// ("Collected") by the difference of the counts. Go's preemption signals crash callgrind unless
// disabled:
//
//	go test -c -o /tmp/api.test ./gateway/api
//	for n in 2000 12000; do GODEBUG=asyncpreemptoff=1 GOMAXPROCS=1 valgrind --tool=callgrind \
//	  --callgrind-out-file=/dev/null /tmp/api.test -test.run '^$' -test.bench '^BenchmarkStatusRead$' \
//	  -test.benchtime ${n}x -test.cpu 1 2>&1 | grep Collected; done
//
// BenchmarkStatusRead measures GET /sessions/{id} as the Laravel app polls it: bearer token,
// rate limit, routing, the session read, isSessionActive, the JSON answer and the Prometheus
// observation (the real metric set), for a session this gateway owns (pending, with a QR code).
func BenchmarkStatusRead(b *testing.B) { benchmarkRead(b, "/sessions/shop_1") }

// BenchmarkQRRead measures GET /sessions/{id}/qr as a pairing page polls it (JSON answer).
func BenchmarkQRRead(b *testing.B) { benchmarkRead(b, "/sessions/shop_1/qr") }

func benchmarkRead(b *testing.B, path string) {
	log := slog.New(slog.DiscardHandler)
	m, err := session.New(context.Background(), session.Config{Logger: log}, sessiontest.NewDriver(), sessiontest.NewStore(), &sessiontest.Sink{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Close(context.Background()) })
	met := metrics.New()
	h, err := api.New(api.Config{
		Token: token, Sessions: m, Reader: m, Activity: &activity{active: map[string]bool{"shop_1": true}},
		Logger: log, ObserveRequest: met.ObserveAPI,
		RateLimit: api.RateLimit{PerSecond: 1e12, Burst: 1e9}, // the limiter runs; the budget is not the subject
	})
	if err != nil {
		b.Fatal(err)
	}
	start := httptest.NewRequest(http.MethodPost, "/sessions", strings.NewReader(`{"session_id":"shop_1"}`))
	start.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, start)
	if rec.Code != http.StatusOK {
		b.Fatalf("start: %d %s", rec.Code, rec.Body)
	}
	for i := 0; ; i++ { // the fake driver shows the first QR code asynchronously
		if info, err := m.Get(context.Background(), "shop_1"); err == nil && info.QR != "" {
			break
		} else if i == 500 {
			b.Fatalf("no QR code after 5 s: %+v %v", info, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	newReq := func() *http.Request {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Accept", "application/json")
		req.RemoteAddr = "127.0.0.1:40000"
		return req
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := newReq()
		w := &benchWriter{h: http.Header{}}
		for pb.Next() {
			clear(w.h)
			w.code, w.n = 0, 0
			h.ServeHTTP(w, req)
			if w.code != http.StatusOK || w.n == 0 {
				b.Fatalf("GET %s answered %d (%d bytes)", path, w.code, w.n)
			}
		}
	})
}

// benchSessions returns a session manager on the test driver with session shop_1 started
// (pending, with a QR code), closed when b ends.
func benchSessions(b *testing.B, log *slog.Logger) *session.Manager {
	b.Helper()
	m, err := session.New(context.Background(), session.Config{Logger: log}, sessiontest.NewDriver(), sessiontest.NewStore(), &sessiontest.Sink{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Close(context.Background()) })
	if _, err := m.Start(context.Background(), "shop_1"); err != nil {
		b.Fatal(err)
	}
	return m
}
