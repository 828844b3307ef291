package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"wagate/gateway/event"
	"wagate/gateway/laravel"
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	return string(body)
}

func TestMetricsAreExposedWithWagateNames(t *testing.T) {
	m := New()
	m.RegisterSessions(func() (map[laravel.Status]int, int) {
		return map[laravel.Status]int{laravel.StatusConnected: 3, laravel.StatusPending: 1}, 2
	})
	obs := m.LaravelObserver()
	obs(laravel.EndpointQR, 200, 5*time.Millisecond)
	obs(laravel.EndpointSession, 0, time.Second)
	h := m.SessionHooks()
	h.EventEmitted(event.Event{Kind: event.KindStatus, Payload: "connected", Priority: event.PriorityHigh})
	h.DeliveryFailed(event.Event{Kind: event.KindQR}, nil)
	h.EventDropped(event.Event{Kind: event.KindQR}, "queue_full")
	m.ObserveAPI("GET /sessions/{id}", "GET", 200, time.Millisecond)

	out := scrape(t, m)
	for _, want := range []string{
		`wagate_sessions{status="connected"} 3`,
		`wagate_sessions{status="pending"} 1`,
		`wagate_sessions{status="expired"} 0`,
		`wagate_sessions_live 2`,
		`wagate_laravel_requests_total{endpoint="qr",status="200"} 1`,
		`wagate_laravel_requests_total{endpoint="session",status="error"} 1`,
		`wagate_laravel_request_duration_seconds_count{endpoint="qr"} 1`,
		`wagate_events_total{kind="status",priority="high"} 1`,
		`wagate_event_delivery_failures_total{kind="qr"} 1`,
		`wagate_events_dropped_total{kind="qr",reason="queue_full"} 1`,
		`wagate_api_request_duration_seconds_count{code="200",method="GET",route="GET /sessions/{id}"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
}

func TestAPIObservationsLandInTheirOwnSeries(t *testing.T) {
	m := New()
	for range 3 {
		m.ObserveAPI("/sessions/{id}", "GET", 200, time.Millisecond)
	}
	m.ObserveAPI("/sessions/{id}", "GET", 404, time.Millisecond)
	m.ObserveAPI("/sessions/{id}", "DELETE", 200, time.Millisecond)
	m.ObserveAPI("other", "BREW", 405, time.Millisecond)
	out := scrape(t, m)
	for _, want := range []string{
		`wagate_api_request_duration_seconds_count{code="200",method="GET",route="/sessions/{id}"} 3`,
		`wagate_api_request_duration_seconds_count{code="404",method="GET",route="/sessions/{id}"} 1`,
		`wagate_api_request_duration_seconds_count{code="200",method="DELETE",route="/sessions/{id}"} 1`,
		`wagate_api_request_duration_seconds_count{code="405",method="BREW",route="other"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
}

func BenchmarkObserveAPI(b *testing.B) {
	m := New()
	b.ReportAllocs()
	for b.Loop() {
		m.ObserveAPI("/sessions/{id}", "GET", 200, time.Millisecond)
	}
}
