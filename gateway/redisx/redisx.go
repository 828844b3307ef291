// Package redisx owns the gateway's connection to Redis: a real server given by URL
// (WAGATE_REDIS_URL) or, when none is configured, an embedded in-process miniredis. The embedded
// mode is for local runs and `make bench` only: it keeps everything in the gateway's memory, so a
// crash loses the outbox and the cache (no persistence), which the log and the readiness reason say.
package redisx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// EmbeddedReason is the readiness reason reported while running on the embedded miniredis.
const EmbeddedReason = "redis: embedded miniredis, no persistence (WAGATE_REDIS_EMBEDDED=1: tests and benchmarks only; set WAGATE_REDIS_URL for production)"

// Conn is the gateway's Redis connection.
type Conn struct {
	// Client is the go-redis client every Redis user of the gateway shares.
	Client *redis.Client
	// Embedded is true when Client talks to an in-process miniredis.
	Embedded bool
	// Addr is the server's host:port (for logs; never includes credentials).
	Addr string
	log  *slog.Logger
	mini *miniredis.Miniredis
	// stopClock ends the embedded server's TTL clock (nil for a real Redis).
	stopClock chan struct{}
	clockDone chan struct{}
	// pools are the clients Pool made, closed with Client.
	pools []*redis.Client
}

// Pool returns another client of the same Redis with the same options and a connection pool of
// its own, for a caller that must not queue for a connection behind the shared Client's other
// users (the cache's status reads behind a storm of write-throughs, cache.Config.Reads). Close
// closes it. Call it while setting up, not concurrently with Close.
func (c *Conn) Pool() *redis.Client {
	opts := *c.Client.Options()
	p := redis.NewClient(&opts)
	c.pools = append(c.pools, p)
	return p
}

// embeddedTTLTick is how often the embedded miniredis moves its key TTLs with the wall clock.
// miniredis's ClockTTL mode checks every key's TTL on each command, which cost a third of the
// gateway's CPU under load; a tick costs one pass over the keys per interval instead, and keys
// expire at most this late.
const embeddedTTLTick = 100 * time.Millisecond

// DefaultPoolSize is the most connections the gateway's pool to a Redis URL opens when the URL
// sets no pool_size (go-redis's own default is 10 per GOMAXPROCS; the larger of the two is
// used). Every session event waits for a connection twice (the cache's write-through, the
// outbox's append), and when WhatsApp drops every session at once, thousands wait together
// while the gateway's CPU is busy with the reconnects' handshakes, so each round trip is long.
// In scale-10000's fakewa restart (10,000 sessions, the gateway on one CPU: 10 connections) the
// outbox refused 7,648 of the 10,000 disconnect events ("Redis did not answer" after its 5 s
// append deadline; the sessions' states were sent again later) and 581 cache writes failed;
// with 128 connections, none and 69. A pool opens connections only while callers wait for one.
const DefaultPoolSize = 128

// pingTimeout bounds one start-up ping of Redis.
const pingTimeout = 5 * time.Second

// Open connects to the Redis at url, or starts an embedded miniredis when url is empty. It pings
// the server so that a wrong URL fails at start: once when startWait is zero, otherwise again and
// again (each attempt logged, pauses of 250 ms doubling up to 5 s) until Redis answers or
// startWait has passed since the first attempt, so that a gateway started while Redis is briefly
// unavailable (restarting, paused, not up yet after a reboot) waits for it instead of exiting into
// a supervisor's crash-loop backoff.
func Open(ctx context.Context, url string, startWait time.Duration, log *slog.Logger) (*Conn, error) {
	if log == nil {
		log = slog.Default()
	}
	if url == "" {
		m := miniredis.NewMiniRedis()
		if err := m.StartAddr("127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("redisx: start embedded miniredis: %w", err)
		}
		c := &Conn{
			Client:    redis.NewClient(&redis.Options{Addr: m.Addr(), Protocol: 2, ContextTimeoutEnabled: true}),
			Embedded:  true,
			Addr:      m.Addr(),
			log:       log,
			mini:      m,
			stopClock: make(chan struct{}),
			clockDone: make(chan struct{}),
		}
		go c.runTTLClock()
		log.Warn("redis: no WAGATE_REDIS_URL configured, running on an EMBEDDED miniredis: no persistence, "+
			"the outbox and cache are lost when the gateway stops; not for production", "addr", m.Addr())
		return c, nil
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redisx: parse redis URL: %w", err)
	}
	if opts.Protocol == 0 {
		opts.Protocol = 2
	}
	// The callers' deadlines (the outbox's append deadline, the cache's write-through bound)
	// must reach the socket: without this go-redis waits out its own ReadTimeout on a hung Redis.
	opts.ContextTimeoutEnabled = true
	if opts.PoolSize == 0 {
		opts.PoolSize = max(DefaultPoolSize, 10*runtime.GOMAXPROCS(0))
	}
	c := &Conn{Client: redis.NewClient(opts), Addr: opts.Addr, log: log}
	if err := c.waitForPing(ctx, startWait); err != nil {
		_ = c.Client.Close()
		return nil, fmt.Errorf("redisx: ping %s: %w", opts.Addr, err)
	}
	log.Info("redis: connected", "addr", opts.Addr, "db", opts.DB)
	return c, nil
}

// waitForPing pings until Redis answers: once when wait is zero, otherwise until wait has passed
// since the first attempt (the last attempt's timeout is cut to what is left of wait) or ctx ends.
func (c *Conn) waitForPing(ctx context.Context, wait time.Duration) error {
	start := time.Now()
	pause := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		timeout := pingTimeout
		if wait > 0 {
			timeout = min(timeout, max(wait-time.Since(start), 100*time.Millisecond))
		}
		pctx, cancel := context.WithTimeout(ctx, timeout)
		err := c.Client.Ping(pctx).Err()
		cancel()
		if err == nil {
			if attempt > 1 {
				c.log.Info("redis: answered after waiting", "addr", c.Addr, "attempts", attempt, "waited", time.Since(start).Round(time.Millisecond))
			}
			return nil
		}
		left := wait - time.Since(start)
		if ctx.Err() != nil || left <= 0 {
			if attempt > 1 {
				return fmt.Errorf("no answer in %d attempts over %s: %w", attempt, time.Since(start).Round(time.Millisecond), err)
			}
			return err
		}
		pause = min(pause, left)
		c.log.Warn("redis: not reachable at start, waiting for it", "addr", c.Addr, "attempt", attempt,
			"err", err, "retry_in", pause, "gives_up_in", left.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last ping: %w)", ctx.Err(), err)
		case <-time.After(pause):
		}
		pause = min(2*pause, pingTimeout)
	}
}

// Ready pings Redis. It returns a human-readable reason (always non-empty) and an error when Redis
// does not answer. On the embedded miniredis the reason is EmbeddedReason.
func (c *Conn) Ready(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := c.Client.Ping(ctx).Err(); err != nil {
		return "redis: unreachable", fmt.Errorf("redisx: ping: %w", err)
	}
	if c.Embedded {
		return EmbeddedReason, nil
	}
	return "redis: ok", nil
}

// Close closes the client and the pools Pool made, and stops the embedded server, if any.
func (c *Conn) Close() error {
	var errs []error
	for _, p := range append(slices.Clip(c.pools), c.Client) {
		if err := p.Close(); err != nil && !errors.Is(err, redis.ErrClosed) {
			errs = append(errs, err)
		}
	}
	err := errors.Join(errs...)
	if c.mini != nil {
		close(c.stopClock)
		<-c.clockDone
		c.mini.Close()
	}
	return err
}

// runTTLClock lets the embedded server's key TTLs follow the wall clock, as a real Redis does,
// until Close.
func (c *Conn) runTTLClock() {
	defer close(c.clockDone)
	t := time.NewTicker(embeddedTTLTick)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-c.stopClock:
			return
		case now := <-t.C:
			c.mini.FastForward(now.Sub(last))
			last = now
		}
	}
}
