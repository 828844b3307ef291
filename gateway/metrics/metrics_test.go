package metrics

import (
	"fmt"
	"io"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"wagate/gateway/event"
	"wagate/gateway/laravel"
	"wagate/internal/buildinfo"
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
		`wagate_api_request_duration_seconds_count{code="405",method="other",route="other"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
}

// seriesOf counts the series of the metric family name in a scrape.
func seriesOf(scrape, name string) int {
	n := 0
	for _, line := range strings.Split(scrape, "\n") {
		if strings.HasPrefix(line, name+"_") || strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ") {
			n++
		}
	}
	return n
}

// An unauthenticated client inventing HTTP methods adds no series beyond the one "other" method.
func TestMadeUpMethodsDoNotCreateSeries(t *testing.T) {
	m := New()
	m.ObserveAPI("other", "GET", 404, time.Millisecond)
	m.ObserveAPI("other", "BREW", 405, time.Millisecond)
	after2 := seriesOf(scrape(t, m), "wagate_api_request_duration_seconds")
	for i := range 200 {
		m.ObserveAPI("other", fmt.Sprintf("X%d", i), 405, time.Millisecond)
	}
	out := scrape(t, m)
	if got := seriesOf(out, "wagate_api_request_duration_seconds"); got != after2 {
		t.Fatalf("%d series after 200 made-up methods, want %d (as after the first)", got, after2)
	}
	if !strings.Contains(out, `wagate_api_request_duration_seconds_count{code="405",method="other",route="other"} 201`) {
		t.Fatalf("made-up methods not counted under method=\"other\":\n%s", out)
	}
}

func TestMethodLabel(t *testing.T) {
	cases := map[string]string{
		"GET": "GET", "HEAD": "HEAD", "POST": "POST", "PUT": "PUT", "PATCH": "PATCH", "DELETE": "DELETE",
		"OPTIONS": "OPTIONS", "CONNECT": "CONNECT", "TRACE": "TRACE",
		"get": "other", "BREW": "other", "PROPFIND": "other", "": "other", strings.Repeat("A", 1000): "other",
	}
	for in, want := range cases {
		if got := MethodLabel(in); got != want {
			t.Errorf("MethodLabel(%.20q) = %q, want %q", in, got, want)
		}
	}
}

// The counters the docs tell operators to watch exist at 0 before anything failed, so alerts on
// rate() or increase() see a series from the first scrape.
func TestFailureAndDropCountersStartAtZero(t *testing.T) {
	out := scrape(t, New())
	for _, want := range []string{
		`wagate_event_delivery_failures_total{kind="qr"} 0`,
		`wagate_event_delivery_failures_total{kind="status"} 0`,
		`wagate_events_dropped_total{kind="qr",reason="queue_full"} 0`,
		`wagate_events_dropped_total{kind="qr",reason="shutdown"} 0`,
		`wagate_events_dropped_total{kind="status",reason="shutdown"} 0`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("a fresh scrape lacks %s", want)
		}
	}
}

func TestBuildInfoNamesTheBuild(t *testing.T) {
	defer func(v, r string) { buildinfo.Version, buildinfo.Revision = v, r }(buildinfo.Version, buildinfo.Revision)
	buildinfo.Version, buildinfo.Revision = "v9.8.7", "0123456789abcdef"
	out := scrape(t, New())
	want := fmt.Sprintf(`wagate_build_info{goversion=%q,revision="0123456789ab",version="v9.8.7"} 1`, runtime.Version())
	if !strings.Contains(out, want) {
		t.Fatalf("scrape lacks %s", want)
	}
}

func BenchmarkObserveAPI(b *testing.B) {
	m := New()
	b.ReportAllocs()
	for b.Loop() {
		m.ObserveAPI("/sessions/{id}", "GET", 200, time.Millisecond)
	}
}

// A scrape is answered as plain text even when the scraper offers gzip (Prometheus always does):
// compressing cost more CPU per scrape than gathering the metrics (BenchmarkScrape).
func TestAScrapeIsAnsweredUncompressed(t *testing.T) {
	m := New()
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, req)
	if enc := rec.Header().Get("Content-Encoding"); enc != "" {
		t.Fatalf("Content-Encoding %q, want none", enc)
	}
	if body := rec.Body.String(); !strings.Contains(body, "wagate_build_info{") {
		t.Fatalf("the answer is not the text format:\n%.200s", body)
	}
}
