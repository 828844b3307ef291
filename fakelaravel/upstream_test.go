package fakelaravel

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"wagate/gateway/laravel"
)

// newFront starts a fakelaravel as the "real app" (it implements the contract the way the
// reference app does, on its own database) and a front with Upstream pointing at it.
func newFront(t *testing.T, mutate func(*Config)) (front, app *harness) {
	t.Helper()
	app = newHarness(t, func(c *Config) { c.Secret = []byte("app-secret") })
	front = newHarness(t, func(c *Config) {
		c.Token, c.AdminToken = "", "admin-token"
		c.Upstream = &Upstream{URL: app.ts.URL, DBPath: app.srv.DBPath(), Workers: 4}
		if mutate != nil {
			mutate(c)
		}
	})
	front.secret = app.secret // requests through the front are signed for the app
	return front, app
}

func TestFrontForwardsToTheRealAppAndCountsWhatItAnswered(t *testing.T) {
	front, app := newFront(t, nil)
	r, res := front.postStatuses("k1", st("alice", laravel.StatusPending, 1), st("bob", laravel.StatusConnected, 5))
	if r.status != http.StatusOK || res.Updated != 2 {
		t.Fatalf("first batch through the front: %d %s", r.status, r.body)
	}
	_, res = front.postStatuses("k2", st("alice", laravel.StatusConnected, 2), st("bob", laravel.StatusLoggedOut, 4))
	if res.Updated != 1 || res.Stale != 1 {
		t.Fatalf("second batch: %+v", res)
	}
	// A retry of k2 is answered from the app's processed_batches, with its replay header.
	r, _ = front.postStatuses("k2", st("alice", laravel.StatusConnected, 2), st("bob", laravel.StatusLoggedOut, 4))
	if r.status != http.StatusOK || r.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay through the front: %d %v %s", r.status, r.header, r.body)
	}
	if info, code := front.session("alice"); code != http.StatusOK || info.EstadoQR != laravel.StatusConnected {
		t.Fatalf("lookup through the front: %d %+v", code, info)
	}
	if r := front.do(http.MethodPost, laravel.PathStatus, `{"session_id":"carol","estado_qr":"connected"}`, nil); r.status != http.StatusOK {
		t.Fatalf("legacy write through the front: %d %s", r.status, r.body)
	}

	// The app applied everything (the front has no data of its own) ...
	if stats := app.srv.Stats(); stats.Endpoints[EndpointStatusBatch].Requests != 3 {
		t.Fatalf("the app saw %d batches, want 3", stats.Endpoints[EndpointStatusBatch].Requests)
	}
	// ... and the front counted it as the fake counts its own requests.
	fs := front.srv.Stats()
	b := fs.Endpoints[EndpointStatusBatch]
	if b.Requests != 3 || b.Items != 4 || b.Updated != 3 || b.Stale != 1 || b.Replayed != 1 || b.StatusCodes["200"] != 3 {
		t.Fatalf("front's batch stats: %+v", b)
	}
	if s := fs.Endpoints[EndpointStatus]; s.Requests != 1 || s.Items != 1 || s.Updated != 1 {
		t.Fatalf("front's legacy stats: %+v", s)
	}
	if g := fs.Endpoints[EndpointSession]; g.Requests != 1 || g.Service.Count != 1 || g.Response.Count != 1 || g.QueueWait.Count != 0 {
		t.Fatalf("front's lookup stats (service and response recorded, the app's hidden queue not): %+v", g)
	}
	if fs.Upstream != app.ts.URL || fs.Capacity != (CalibratedModel{}) || fs.Workers.Workers != 4 {
		t.Fatalf("front's stats must name the real app and no model: upstream %q capacity %+v workers %d", fs.Upstream, fs.Capacity, fs.Workers.Workers)
	}

	// The ground truth is the app's database, read by the front.
	state, err := front.srv.State(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]laravel.Status{}
	for _, s := range state.Sessions {
		got[s.SessionID] = s.EstadoQR
	}
	want := map[string]laravel.Status{"alice": laravel.StatusConnected, "bob": laravel.StatusConnected, "carol": laravel.StatusConnected}
	if len(got) != len(want) {
		t.Fatalf("state through the front: %v, want %v", got, want)
	}
	for id, s := range want {
		if got[id] != s {
			t.Fatalf("state through the front: %v, want %v", got, want)
		}
	}
}

func TestFrontCountsTheAppsAuthenticationFailures(t *testing.T) {
	front, _ := newFront(t, nil)
	if r := front.do(http.MethodGet, laravel.PathSessionPrefix+"alice", "", map[string]string{"Authorization": "Bearer wrong"}); r.status != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", r.status)
	}
	if r := front.do(http.MethodPost, laravel.PathStatus, `{"session_id":"a","estado_qr":"connected"}`, map[string]string{laravel.HeaderSignature: "sha256=00"}); r.status != http.StatusUnauthorized {
		t.Fatalf("bad signature: %d", r.status)
	}
	st := front.srv.Stats()
	if st.AuthFailures != 1 || st.SignatureFailures != 1 {
		t.Fatalf("auth failures %d, signature failures %d; want 1 and 1", st.AuthFailures, st.SignatureFailures)
	}
}

func TestFrontAnswers502WhenTheAppIsGoneAnd504WhenItIsTooSlow(t *testing.T) {
	// An address nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := "http://" + ln.Addr().String()
	ln.Close()
	_, app := newFront(t, nil)
	front := newHarness(t, func(c *Config) {
		c.Upstream = &Upstream{URL: gone, DBPath: app.srv.DBPath()}
	})
	if r := front.do(http.MethodGet, laravel.PathSessionPrefix+"alice", "", nil); r.status != http.StatusBadGateway {
		t.Fatalf("app gone: %d %s", r.status, r.body)
	}

	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); slow.Close() })
	front = newHarness(t, func(c *Config) {
		c.Upstream = &Upstream{URL: slow.URL, DBPath: app.srv.DBPath(), Timeout: 50 * time.Millisecond}
	})
	if r := front.do(http.MethodGet, laravel.PathSessionPrefix+"alice", "", nil); r.status != http.StatusGatewayTimeout {
		t.Fatalf("app too slow: %d %s", r.status, r.body)
	}
	if c := front.srv.Stats().Endpoints[EndpointSession].StatusCodes; c["502"] != 0 || c["504"] != 1 {
		t.Fatalf("status codes %v", c)
	}
}

func TestFrontInjectsFaultsWithoutBotheringTheApp(t *testing.T) {
	front, app := newFront(t, func(c *Config) {
		c.Faults = Faults{ErrorRate: 1, ErrorStatus: http.StatusServiceUnavailable, RetryAfterS: 3}
	})
	r := front.do(http.MethodGet, laravel.PathSessionPrefix+"alice", "", nil)
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") != "3" {
		t.Fatalf("injected error: %d %v", r.status, r.header)
	}
	if n := app.srv.Stats().Endpoints[EndpointSession].Requests; n != 0 {
		t.Fatalf("the app saw %d requests behind an injected error", n)
	}
	if n := front.srv.Stats().InjectedErrors; n != 1 {
		t.Fatalf("injected errors %d", n)
	}
}

func TestFrontRefusesToChangeTheRealAppsData(t *testing.T) {
	front, _ := newFront(t, nil)
	for _, path := range []string{PathReset, PathSessions + "alice"} {
		method := http.MethodPost
		if path != PathReset {
			method = http.MethodPut
		}
		r := front.do(method, path, `{"enabled":true}`, map[string]string{"Authorization": "Bearer admin-token"})
		if r.status != http.StatusNotImplemented || !strings.Contains(string(r.body), "real Laravel") {
			t.Fatalf("%s %s: %d %s", method, path, r.status, r.body)
		}
	}
	if err := front.srv.Reset(t.Context()); !errors.Is(err, ErrUpstreamOnly) {
		t.Fatalf("Reset: %v", err)
	}
}

func TestFrontNeedsTheAppsURLAndDatabase(t *testing.T) {
	db := filepath.Join(t.TempDir(), "none.sqlite")
	for name, up := range map[string]Upstream{
		"no scheme":   {URL: "127.0.0.1:8089", DBPath: db},
		"no database": {URL: "http://127.0.0.1:8089"},
		"missing db":  {URL: "http://127.0.0.1:8089", DBPath: db},
	} {
		_, err := New(t.Context(), Config{AdminToken: "a", Upstream: &up})
		if err == nil || !strings.Contains(err.Error(), "upstream") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
