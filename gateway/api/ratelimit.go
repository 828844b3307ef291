package api

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// RateLimit bounds the requests of each client with token buckets; a request over its client's
// budget is answered 429 with Retry-After (seconds until the bucket has a token again). The
// client is the remote IP address, or, when that address is one of TrustedProxies, the address
// the proxies recorded in X-Forwarded-For (read from the right, skipping trusted proxies, so a
// client cannot choose its own address by sending the header). Each client has three buckets:
// requests carrying the valid bearer token (the Laravel application); unauthenticated requests
// to the operational endpoints /healthz, /readyz and /metrics (probes, Prometheus); and every
// other unauthenticated request (scanners, brute force). A flood of junk therefore neither
// throttles the Laravel app nor starves health checks and scrapes coming through the same
// address (e.g. a TLS proxy that is not listed in TrustedProxies).
type RateLimit struct {
	// PerSecond and Burst bound authenticated requests per client [10,000/s, burst 20,000]: a
	// safety net against a runaway loop in the Laravel app, above what `make bench-capacity`'s
	// largest runs cause from one simulator.
	PerSecond float64
	Burst     int
	// UnauthPerSecond and UnauthBurst bound requests without a valid token per client [10/s,
	// burst 50]: enough for health checks and Prometheus, not for guessing tokens.
	UnauthPerSecond float64
	UnauthBurst     int
	// OpsPerSecond and OpsBurst bound unauthenticated requests to /healthz, /readyz, /metrics and
	// /metrics/... per client [10/s, burst 50], apart from UnauthPerSecond's bucket.
	OpsPerSecond float64
	OpsBurst     int
	// TrustedProxies are the proxies whose X-Forwarded-For names the client; empty trusts none.
	TrustedProxies []netip.Prefix
	// MaxClients bounds the clients tracked at once [10,000]; beyond it, new clients share one
	// bucket per kind, so a spray of addresses cannot grow memory.
	MaxClients int
	// Disabled turns rate limiting off.
	Disabled bool
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// fill gives every zero (or negative) field its default (DefaultConfig is a filled zero RateLimit).
func (l *RateLimit) fill() {
	if l.PerSecond <= 0 {
		l.PerSecond = 10000
	}
	if l.Burst <= 0 {
		l.Burst = 20000
	}
	if l.UnauthPerSecond <= 0 {
		l.UnauthPerSecond = 10
	}
	if l.UnauthBurst <= 0 {
		l.UnauthBurst = 50
	}
	if l.OpsPerSecond <= 0 {
		l.OpsPerSecond = 10
	}
	if l.OpsBurst <= 0 {
		l.OpsBurst = 50
	}
	if l.MaxClients <= 0 {
		l.MaxClients = 10000
	}
	if l.Now == nil {
		l.Now = time.Now
	}
}

// bucket is one client's token bucket.
type bucket struct {
	tokens float64
	last   time.Time
}

// take refills b at rate up to burst and takes one token; when none is left it returns the
// wait until one is.
func (b *bucket) take(now time.Time, rate float64, burst int) (bool, time.Duration) {
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = math.Min(float64(burst), b.tokens+el*rate)
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / rate * float64(time.Second))
}

// budgetKind names a client's bucket: authenticated, unauthenticated operational, or other
// unauthenticated requests.
type budgetKind byte

const (
	budgetAuthenticated budgetKind = 'a'
	budgetOps           budgetKind = 'o'
	budgetUnauth        budgetKind = 'u'
)

// limiter holds the buckets of every kind.
type limiter struct {
	cfg   RateLimit
	token string // the API token, told apart in constant time (tokenMatches)

	mu       sync.Mutex
	clients  map[clientKey]*bucket
	overflow map[budgetKind]*bucket // shared buckets once MaxClients is reached
	swept    time.Time
}

// clientKey names one client's bucket of one kind. A struct, not a joined string, so looking a
// bucket up allocates nothing on the request path (the address is a substring of RemoteAddr).
type clientKey struct {
	kind budgetKind
	addr string
}

func newLimiter(cfg RateLimit, token string) *limiter {
	cfg.fill()
	return &limiter{cfg: cfg, token: token, clients: map[clientKey]*bucket{}, overflow: map[budgetKind]*bucket{}}
}

// budget returns the rate and burst of a kind of bucket.
func (l *limiter) budget(kind budgetKind) (float64, int) {
	switch kind {
	case budgetAuthenticated:
		return l.cfg.PerSecond, l.cfg.Burst
	case budgetOps:
		return l.cfg.OpsPerSecond, l.cfg.OpsBurst
	}
	return l.cfg.UnauthPerSecond, l.cfg.UnauthBurst
}

// isOpsPath reports whether path is an operational endpoint (health, readiness, metrics).
func isOpsPath(path string) bool {
	switch path {
	case "/healthz", "/readyz", "/metrics":
		return true
	}
	return strings.HasPrefix(path, "/metrics/")
}

// allow takes a token of the client's bucket of the request's kind.
func (l *limiter) allow(r *http.Request) (bool, time.Duration) {
	kind := budgetUnauth
	switch {
	case l.authenticated(r):
		kind = budgetAuthenticated
	case isOpsPath(r.URL.Path):
		kind = budgetOps
	}
	rate, burst := l.budget(kind)
	key := clientKey{kind: kind, addr: l.clientAddr(r)}
	now := l.cfg.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.clients[key]
	if b == nil {
		if len(l.clients) >= l.cfg.MaxClients {
			l.sweep(now)
		}
		if len(l.clients) >= l.cfg.MaxClients {
			if b = l.overflow[kind]; b == nil {
				b = &bucket{tokens: float64(burst), last: now}
				l.overflow[kind] = b
			}
		} else {
			b = &bucket{tokens: float64(burst), last: now}
			key.addr = strings.Clone(key.addr) // do not keep the request's RemoteAddr alive
			l.clients[key] = b
		}
	}
	return b.take(now, rate, burst)
}

// sweep forgets clients whose bucket has refilled completely (idle long enough to be full), at
// most once a second. Callers hold l.mu.
func (l *limiter) sweep(now time.Time) {
	if now.Sub(l.swept) < time.Second {
		return
	}
	l.swept = now
	for k, b := range l.clients {
		rate, burst := l.budget(k.kind)
		if b.tokens+now.Sub(b.last).Seconds()*rate >= float64(burst) {
			delete(l.clients, k)
		}
	}
}

// authenticated reports whether r carries the API token: the same constant-time check as the
// handlers' (authorized), without hashing the token on every request.
func (l *limiter) authenticated(r *http.Request) bool {
	token, ok := bearerToken(r)
	return ok && tokenMatches(token, l.token)
}

// clientAddr is the client's IP address: the remote address (the port dropped), or, when that is a
// trusted proxy, the rightmost X-Forwarded-For address that is not a trusted proxy. Entries left
// of it were written by the client and are ignored; an entry that is no IP address ends the walk
// at the last trusted hop (a client cannot mint fresh buckets with junk).
func (l *limiter) clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if len(l.cfg.TrustedProxies) == 0 { // no proxy to recognise: the address is the client's
		return host
	}
	remote, err := netip.ParseAddr(host)
	if err != nil || !l.trusted(remote) {
		return host
	}
	client := remote.Unmap()
	forwarded := r.Header.Values("X-Forwarded-For")
	for i := len(forwarded) - 1; i >= 0; i-- {
		hops := strings.Split(forwarded[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			hop, err := netip.ParseAddr(strings.TrimSpace(hops[j]))
			if err != nil {
				return client.String()
			}
			client = hop.Unmap()
			if !l.trusted(client) {
				return client.String()
			}
		}
	}
	return client.String()
}

// trusted reports whether a is one of the configured proxies.
func (l *limiter) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range l.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// rateLimit answers 429 with Retry-After to clients over their budget.
func (a *api) rateLimit(next http.Handler) http.Handler {
	if a.cfg.RateLimit.Disabled {
		return next
	}
	l := newLimiter(a.cfg.RateLimit, a.cfg.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ok, wait := l.allow(r)
		if !ok {
			secs := int(math.Ceil(wait.Seconds()))
			w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
			writeError(w, http.StatusTooManyRequests, "rate_limited", "too many requests from this client; retry after the Retry-After seconds")
			return
		}
		next.ServeHTTP(w, r)
	})
}
