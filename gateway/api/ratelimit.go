package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// RateLimit bounds the requests of each client (remote IP address; X-Forwarded-For is not
// trusted) with token buckets; a request over its client's budget is answered 429 with
// Retry-After (seconds until the bucket has a token again). Requests carrying the valid bearer
// token (the Laravel application) and those without it (anyone else: scanners, brute force)
// have separate buckets, so a flood of unauthenticated requests from the Laravel app's own
// address does not throttle the app.
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
	// MaxClients bounds the clients tracked at once [10,000]; beyond it, new clients share one
	// bucket per kind, so a spray of addresses cannot grow memory.
	MaxClients int
	// Disabled turns rate limiting off.
	Disabled bool
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

func (l RateLimit) withDefaults() RateLimit {
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
	if l.MaxClients <= 0 {
		l.MaxClients = 10000
	}
	if l.Now == nil {
		l.Now = time.Now
	}
	return l
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

// limiter holds the buckets of both kinds.
type limiter struct {
	cfg       RateLimit
	tokenHash [32]byte

	mu       sync.Mutex
	clients  map[string]*bucket // key: kind + address
	overflow map[bool]*bucket   // shared buckets once MaxClients is reached, by authenticated
	swept    time.Time
}

func newLimiter(cfg RateLimit, tokenHash [32]byte) *limiter {
	cfg = cfg.withDefaults()
	return &limiter{cfg: cfg, tokenHash: tokenHash, clients: map[string]*bucket{}, overflow: map[bool]*bucket{}}
}

// allow takes a token of the client's bucket of the request's kind.
func (l *limiter) allow(r *http.Request) (bool, time.Duration) {
	authed := l.authenticated(r)
	rate, burst := l.cfg.UnauthPerSecond, l.cfg.UnauthBurst
	key := "u|" + clientAddr(r)
	if authed {
		rate, burst = l.cfg.PerSecond, l.cfg.Burst
		key = "a|" + clientAddr(r)
	}
	now := l.cfg.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.clients[key]
	if b == nil {
		if len(l.clients) >= l.cfg.MaxClients {
			l.sweep(now)
		}
		if len(l.clients) >= l.cfg.MaxClients {
			if b = l.overflow[authed]; b == nil {
				b = &bucket{tokens: float64(burst), last: now}
				l.overflow[authed] = b
			}
		} else {
			b = &bucket{tokens: float64(burst), last: now}
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
		rate, burst := l.cfg.UnauthPerSecond, l.cfg.UnauthBurst
		if strings.HasPrefix(k, "a|") {
			rate, burst = l.cfg.PerSecond, l.cfg.Burst
		}
		if b.tokens+now.Sub(b.last).Seconds()*rate >= float64(burst) {
			delete(l.clients, k)
		}
	}
}

// authenticated reports whether r carries the API token (constant-time comparison).
func (l *limiter) authenticated(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		token, ok = strings.CutPrefix(h, "bearer ")
	}
	if !ok {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return subtle.ConstantTimeCompare(got[:], l.tokenHash[:]) == 1
}

// clientAddr is the request's remote IP address (the port dropped).
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// rateLimit answers 429 with Retry-After to clients over their budget.
func (a *api) rateLimit(next http.Handler) http.Handler {
	if a.cfg.RateLimit.Disabled {
		return next
	}
	l := newLimiter(a.cfg.RateLimit, a.tokenHash)
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
