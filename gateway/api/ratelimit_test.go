package api

import (
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

// fakeClock is a settable clock for the limiter.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func limited(t *testing.T, h http.Handler, remote, auth string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
	req.RemoteAddr = remote
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Header().Get("Retry-After")
}

func newLimitedHandler(t *testing.T, clock *fakeClock, cfg RateLimit) http.Handler {
	t.Helper()
	cfg.Now = clock.Now
	a := &api{cfg: Config{RateLimit: cfg}}
	a.tokenHash = sha256Of("the-api-token-0123")
	return a.rateLimit(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
}

func TestAClientOverItsBudgetGets429WithRetryAfter(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1000, 0)}
	h := newLimitedHandler(t, clock, RateLimit{UnauthPerSecond: 2, UnauthBurst: 5, PerSecond: 100, Burst: 100})
	for i := range 5 {
		if code, _ := limited(t, h, "203.0.113.7:5000", ""); code != http.StatusOK {
			t.Fatalf("request %d within the burst: %d", i+1, code)
		}
	}
	code, retry := limited(t, h, "203.0.113.7:5001", "Bearer wrong")
	if code != http.StatusTooManyRequests {
		t.Fatalf("6th unauthenticated request: %d, want 429", code)
	}
	if secs, err := strconv.Atoi(retry); err != nil || secs < 1 {
		t.Fatalf("Retry-After %q, want whole seconds >= 1", retry)
	}
	// The same address with the valid token has its own budget: the Laravel app is not throttled
	// by a flood of junk from its own host.
	if code, _ := limited(t, h, "203.0.113.7:5002", "Bearer the-api-token-0123"); code != http.StatusOK {
		t.Fatalf("authenticated request from the flooding address: %d", code)
	}
	// Another address is unaffected.
	if code, _ := limited(t, h, "198.51.100.9:1", ""); code != http.StatusOK {
		t.Fatalf("another client: %d", code)
	}
	// After Retry-After the client may go on.
	clock.now = clock.now.Add(time.Second)
	if code, _ := limited(t, h, "203.0.113.7:5003", ""); code != http.StatusOK {
		t.Fatalf("after waiting: %d", code)
	}
}

func TestAuthenticatedClientsHaveTheirOwnLargerBudget(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1000, 0)}
	h := newLimitedHandler(t, clock, RateLimit{UnauthPerSecond: 1, UnauthBurst: 1, PerSecond: 10, Burst: 20})
	ok := 0
	for range 30 {
		if code, _ := limited(t, h, "192.0.2.1:1", "Bearer the-api-token-0123"); code == http.StatusOK {
			ok++
		}
	}
	if ok != 20 {
		t.Fatalf("%d of 30 allowed at once, want the burst of 20", ok)
	}
	clock.now = clock.now.Add(500 * time.Millisecond)
	ok = 0
	for range 10 {
		if code, _ := limited(t, h, "192.0.2.1:1", "Bearer the-api-token-0123"); code == http.StatusOK {
			ok++
		}
	}
	if ok != 5 {
		t.Fatalf("%d allowed after 0.5 s at 10/s, want 5", ok)
	}
}

func TestASprayOfAddressesCannotGrowTheLimiter(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1000, 0)}
	l := newLimiter(RateLimit{MaxClients: 100, UnauthPerSecond: 1, UnauthBurst: 2, Now: clock.Now}, sha256Of("x"))
	for i := range 5000 {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.RemoteAddr = "10.0." + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256) + ":1"
		l.allow(req)
	}
	if n := len(l.clients); n > 100 {
		t.Fatalf("%d clients tracked, bound 100", n)
	}
	// Idle clients are forgotten so new ones get their own bucket again.
	clock.now = clock.now.Add(time.Minute)
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.RemoteAddr = "172.16.0.1:1"
	l.allow(req)
	if _, ok := l.clients["u|172.16.0.1"]; !ok {
		t.Fatal("a new client after the sweep shares the overflow bucket")
	}
}

func TestDisabledRateLimitPassesEverything(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1000, 0)}
	h := newLimitedHandler(t, clock, RateLimit{Disabled: true, UnauthPerSecond: 1, UnauthBurst: 1})
	for range 10 {
		if code, _ := limited(t, h, "192.0.2.1:1", ""); code != http.StatusOK {
			t.Fatalf("disabled limiter answered %d", code)
		}
	}
}

func sha256Of(s string) [32]byte { return sha256.Sum256([]byte(s)) }
