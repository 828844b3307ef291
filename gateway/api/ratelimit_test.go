package api

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"testing"
	"time"
)

// fakeClock is a settable clock for the limiter.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func limited(t *testing.T, h http.Handler, remote, auth string) (int, string) {
	t.Helper()
	return limitedPath(t, h, "/sessions", remote, auth, "")
}

// limitedPath sends GET path from remote with an optional Authorization and X-Forwarded-For.
func limitedPath(t *testing.T, h http.Handler, path, remote, auth, forwardedFor string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.RemoteAddr = remote
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if forwardedFor != "" {
		req.Header.Set("X-Forwarded-For", forwardedFor)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Header().Get("Retry-After")
}

func newLimitedHandler(t *testing.T, clock *fakeClock, cfg RateLimit) http.Handler {
	t.Helper()
	cfg.Now = clock.Now
	a := &api{cfg: Config{RateLimit: cfg}}
	a.cfg.Token = "the-api-token-0123"
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
	l := newLimiter(RateLimit{MaxClients: 100, UnauthPerSecond: 1, UnauthBurst: 2, Now: clock.Now}, "x")
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
	if _, ok := l.clients[clientKey{budgetUnauth, "172.16.0.1"}]; !ok {
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

// A scanner flooding junk through the same address (e.g. a TLS proxy) exhausts only the
// unauthenticated budget: health checks and scrapes have their own.
func TestOperationalEndpointsAreNotStarvedByJunk(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1000, 0)}
	h := newLimitedHandler(t, clock, RateLimit{UnauthPerSecond: 1, UnauthBurst: 3, OpsPerSecond: 1, OpsBurst: 3})
	for range 20 {
		limitedPath(t, h, "/wp-login.php", "127.0.0.1:1", "", "")
	}
	if code, _ := limitedPath(t, h, "/sessions", "127.0.0.1:2", "", ""); code != http.StatusTooManyRequests {
		t.Fatalf("junk budget not spent: %d", code)
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if code, _ := limitedPath(t, h, path, "127.0.0.1:3", "", ""); code != http.StatusOK {
			t.Errorf("%s after a junk flood: %d, want 200", path, code)
		}
	}
	// The operational budget is a budget too.
	if code, _ := limitedPath(t, h, "/metrics/batch", "127.0.0.1:3", "", ""); code != http.StatusTooManyRequests {
		t.Errorf("4th operational request within a second: %d, want 429", code)
	}
}

func TestClientAddressBehindTrustedProxies(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/8")}
	cases := []struct {
		name, remote string
		forwarded    []string
		want         string
	}{
		{"direct client", "203.0.113.7:5000", nil, "203.0.113.7"},
		{"untrusted sender's header is ignored", "203.0.113.7:5000", []string{"198.51.100.1"}, "203.0.113.7"},
		{"one trusted proxy", "127.0.0.1:5000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"client-sent entries left of the proxy's are ignored", "127.0.0.1:5000", []string{"1.2.3.4, 198.51.100.1"}, "198.51.100.1"},
		{"two trusted proxies", "127.0.0.1:5000", []string{"198.51.100.1, 10.1.2.3"}, "198.51.100.1"},
		{"several header lines", "127.0.0.1:5000", []string{"6.6.6.6", "198.51.100.1, 10.1.2.3"}, "198.51.100.1"},
		{"only proxies: the leftmost", "127.0.0.1:5000", []string{"10.9.9.9, 10.1.2.3"}, "10.9.9.9"},
		{"junk stops at the last trusted hop", "127.0.0.1:5000", []string{"junk, 10.1.2.3"}, "10.1.2.3"},
		{"trusted proxy without a header", "127.0.0.1:5000", nil, "127.0.0.1"},
		{"IPv4-mapped IPv6", "[::ffff:127.0.0.1]:5000", []string{"::ffff:198.51.100.1"}, "198.51.100.1"},
		{"IPv6 client", "127.0.0.1:5000", []string{"2001:db8::1"}, "2001:db8::1"},
	}
	l := newLimiter(RateLimit{TrustedProxies: proxies}, "x")
	for _, tc := range cases {
		req := httptest.NewRequest(http.MethodGet, "/sessions", nil)
		req.RemoteAddr = tc.remote
		for _, f := range tc.forwarded {
			req.Header.Add("X-Forwarded-For", f)
		}
		if got := l.clientAddr(req); got != tc.want {
			t.Errorf("%s: client %q, want %q", tc.name, got, tc.want)
		}
	}
}

// Behind a trusted proxy every caller has its own bucket; without the setting they share one.
func TestCallersBehindATrustedProxyHaveTheirOwnBuckets(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1000, 0)}
	for _, tc := range []struct {
		name      string
		trusted   []netip.Prefix
		secondGot int
	}{
		{"proxy trusted", []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, http.StatusOK},
		{"proxy not trusted", nil, http.StatusTooManyRequests},
	} {
		h := newLimitedHandler(t, clock, RateLimit{UnauthPerSecond: 1, UnauthBurst: 2, TrustedProxies: tc.trusted})
		for range 3 {
			limitedPath(t, h, "/sessions", "127.0.0.1:1", "", "198.51.100.1")
		}
		if code, _ := limitedPath(t, h, "/sessions", "127.0.0.1:1", "", "198.51.100.2"); code != tc.secondGot {
			t.Errorf("%s: another caller after a flood: %d, want %d", tc.name, code, tc.secondGot)
		}
	}
}

// The limiter sits on every request's path: taking a token of a known client's bucket, with the
// bearer token checked, allocates nothing.
func TestTakingATokenAllocatesNothing(t *testing.T) {
	l := newLimiter(RateLimit{PerSecond: 1e12, Burst: 1e9}, "the-api-token-0123")
	for _, tc := range []struct{ name, path, auth string }{
		{"authenticated", "/sessions/shop_1", "Bearer the-api-token-0123"},
		{"operational", "/metrics", ""},
		{"unauthenticated", "/sessions/shop_1", "Bearer wrong"},
	} {
		req := httptest.NewRequest(http.MethodGet, tc.path, nil)
		req.RemoteAddr = "127.0.0.1:40000"
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		l.allow(req) // the client's first request creates its bucket
		if n := testing.AllocsPerRun(100, func() { l.allow(req) }); n != 0 {
			t.Errorf("%s: %v allocations per request, want 0", tc.name, n)
		}
	}
}

// BenchmarkLimiterAllow measures the limiter's part of every request: the bearer check that picks
// the bucket, the client's address and taking a token (no trusted proxies, the default).
func BenchmarkLimiterAllow(b *testing.B) {
	l := newLimiter(RateLimit{PerSecond: 1e12, Burst: 1e9}, "the-api-token-0123")
	req := httptest.NewRequest(http.MethodGet, "/sessions/shop_1", nil)
	req.RemoteAddr = "127.0.0.1:40000"
	req.Header.Set("Authorization", "Bearer the-api-token-0123")
	b.ReportAllocs()
	for b.Loop() {
		if ok, _ := l.allow(req); !ok {
			b.Fatal("limited")
		}
	}
}

// The limiter picks the authenticated bucket exactly when the handlers accept the token, so a
// wrong token never draws on the Laravel app's budget and the right one never on the junk budget.
func TestTheLimiterAuthenticatesAsTheHandlersDo(t *testing.T) {
	const token = "the-api-token-0123"
	l := newLimiter(RateLimit{}, token)
	a := &api{cfg: Config{Token: token}}
	for _, tc := range []struct {
		name, header string
		want         bool
	}{
		{"the token", "Bearer " + token, true},
		{"lower-case scheme", "bearer " + token, true},
		{"spaces around the token", "Bearer  " + token + " ", true},
		{"no header", "", false},
		{"another scheme", "Basic " + token, false},
		{"upper-case scheme", "BEARER " + token, false},
		{"a prefix of the token", "Bearer " + token[:len(token)-1], false},
		{"the token and more", "Bearer " + token + "4", false},
		{"empty token", "Bearer ", false},
	} {
		req := httptest.NewRequest(http.MethodGet, "/sessions/shop_1", nil)
		if tc.header != "" {
			req.Header.Set("Authorization", tc.header)
		}
		rec := httptest.NewRecorder()
		if got := a.authorized(rec, req); got != tc.want {
			t.Errorf("%s: handlers accept it: %v, want %v", tc.name, got, tc.want)
		}
		if got := l.authenticated(req); got != tc.want {
			t.Errorf("%s: limiter takes it for authenticated: %v, want %v", tc.name, got, tc.want)
		}
	}
}
