// Package cache owns the gateway's three-level cache of session state, read by isSessionActive,
// GET /sessions/{id} and GET /sessions/{id}/qr in batch mode:
//
//   - L1, in-process (maypok86/otter v2), a short TTL;
//   - L2, Redis: one hash per session (status, QR and their versions and expiries, the
//     "enabled" flag Laravel reported, a not-found marker) with TTLs per kind (qr, status,
//     connection, session), shared by all gateway replicas;
//   - L3, Laravel's session lookup (GET /api/whatsapp/sessions/{id}) behind singleflight, with
//     negative caching of unknown sessions.
//
// The gateway writes through on its own events (Record: it learns a session's state before
// Laravel does); a write only replaces a field with a newer version. Every write is announced on a
// pub/sub channel so other gateways drop their L1 copy, and since pub/sub loses messages while
// disconnected, L1 is flushed whenever the subscription reconnects.
package cache

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"

	"wagate/gateway/delivery"
	"wagate/gateway/event"
	"wagate/gateway/laravel"
	"wagate/internal/lograte"
)

// ErrUnknownSession matches (errors.Is) a read of a session Laravel does not know (a 404, cached
// for NegativeTTL).
var ErrUnknownSession = errors.New("cache: unknown session")

// SessionLookup is the L3 lookup; *laravel.Client implements it.
type SessionLookup interface {
	GetSession(ctx context.Context, sessionID string) (laravel.SessionInfo, error)
}

// Defaults of Config.
const (
	DefaultKeyPrefix     = "wagate:session:"
	DefaultIndexPrefix   = "wagate:cache:index:"
	DefaultChannel       = "wagate:cache:invalidate"
	DefaultL1TTL         = 2 * time.Second
	DefaultL1MaxSize     = 100_000
	DefaultQRTTL         = 60 * time.Second
	DefaultStatusTTL     = 5 * time.Minute
	DefaultConnectionTTL = 60 * time.Second
	DefaultSessionTTL    = 5 * time.Minute
	DefaultNegativeTTL   = 10 * time.Second
	DefaultWriteTimeout  = 250 * time.Millisecond
)

// Config configures a Cache. Zero fields take the defaults.
type Config struct {
	// KeyPrefix prefixes the per-session hashes.
	KeyPrefix string
	// IndexPrefix prefixes the sorted sets that count live keys per kind (metrics).
	IndexPrefix string
	// Channel is the pub/sub channel of L1 invalidations.
	Channel string
	// GatewayID tells this gateway's own invalidations apart (default random).
	GatewayID string
	// L1TTL bounds how long L1 trusts an entry (default 2 s).
	L1TTL time.Duration
	// L1MaxSize bounds L1's entries (default 100,000).
	L1MaxSize int
	// QRTTL is how long a QR code is served (its expiry; default 60 s).
	QRTTL time.Duration
	// StatusTTL is how long a pending/expired/logged_out status is trusted (default 5 min).
	StatusTTL time.Duration
	// ConnectionTTL is how long a connected/disconnected status is trusted (default 60 s).
	ConnectionTTL time.Duration
	// SessionTTL is how long Laravel's answer (enabled flag) is trusted (default 5 min).
	SessionTTL time.Duration
	// NegativeTTL is how long an unknown session stays unknown without asking Laravel (10 s).
	NegativeTTL time.Duration
	// WriteTimeout bounds the write-through of one event (WriteThrough) before it is handed to
	// the delivery: a Redis that hangs must not hold every event for its client timeout
	// (default 250 ms).
	WriteTimeout time.Duration
	// Now replaces time.Now (tests); L1 follows it too.
	Now func() time.Time
	// Logger receives the cache's logs (default slog.Default()).
	Logger *slog.Logger
	// Reads is the Redis client of the read path (State: the L2 read, renewals, storing Laravel's
	// answers); nil: the client New was given, which also carries the write-throughs. Give reads
	// a client of their own (its own connection pool) so that status reads never queue for a
	// connection behind a storm of writes: after a fakewa restart at 10,000 sessions every session
	// wrote through at once, go-redis's pool (10 connections on one core) was theirs, and the
	// status API's handlers waited up to its 4 s pool timeout, then asked Laravel.
	Reads redis.UniversalClient
}

func (c *Config) fill() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = DefaultKeyPrefix
	}
	if c.IndexPrefix == "" {
		c.IndexPrefix = DefaultIndexPrefix
	}
	if c.Channel == "" {
		c.Channel = DefaultChannel
	}
	if c.GatewayID == "" {
		c.GatewayID = strconv.FormatUint(rand.Uint64(), 36)
	}
	def(&c.L1TTL, DefaultL1TTL)
	def(&c.QRTTL, DefaultQRTTL)
	def(&c.StatusTTL, DefaultStatusTTL)
	def(&c.ConnectionTTL, DefaultConnectionTTL)
	def(&c.SessionTTL, DefaultSessionTTL)
	def(&c.NegativeTTL, DefaultNegativeTTL)
	def(&c.WriteTimeout, DefaultWriteTimeout)
	if c.L1MaxSize <= 0 {
		c.L1MaxSize = DefaultL1MaxSize
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// State is what the gateway knows about a session.
type State struct {
	SessionID string `json:"session_id"`
	// Status is the estado_qr; empty when unknown (HasStatus false).
	Status        laravel.Status `json:"estado_qr,omitempty"`
	StatusVersion int64          `json:"status_version"`
	HasStatus     bool           `json:"-"`
	// QR is the current QR code, empty when none is valid.
	QR            string    `json:"qr,omitempty"`
	QRVersion     int64     `json:"qr_version"`
	QRGeneratedAt time.Time `json:"qr_generated_at,omitzero"`
	QRExpiresAt   time.Time `json:"qr_expires_at,omitzero"`
	// Enabled is Laravel's flag, when EnabledKnown.
	Enabled      bool `json:"enabled"`
	EnabledKnown bool `json:"-"`
	// Level says where the answer came from: "l1", "l2" or "l3".
	Level string `json:"-"`
}

// Active is isSessionActive: connected, and not disabled in Laravel.
func (s State) Active() bool {
	return s.HasStatus && s.Status == laravel.StatusConnected && (!s.EnabledKnown || s.Enabled)
}

// record is the cached hash with absolute expiries (unix ms); fields past expiry are ignored.
type record struct {
	status               string
	statusV, statusExp   int64
	qr                   string
	qrV, qrAt, qrExp     int64
	enabled              bool
	enabledExp           int64
	notFoundExp          int64
	hasStatus, hasQR     bool
	hasEnabled, notFound bool
	// owned: this gateway wrote the record's state (the "owner" field is its GatewayID), so no
	// other writer changes it without an invalidation and L1 may keep it while it is fresh.
	owned bool
}

func parseRecord(h map[string]string, gatewayID string) *record {
	n := func(k string) int64 { v, _ := strconv.ParseInt(h[k], 10, 64); return v }
	r := &record{owned: h["owner"] == gatewayID}
	if s, ok := h["status"]; ok {
		r.hasStatus, r.status, r.statusV, r.statusExp = true, s, n("status_v"), n("status_exp")
	}
	if q, ok := h["qr"]; ok {
		r.hasQR, r.qr, r.qrV, r.qrAt, r.qrExp = true, q, n("qr_v"), n("qr_at"), n("qr_exp")
	}
	if e, ok := h["enabled"]; ok {
		r.hasEnabled, r.enabled, r.enabledExp = true, e == "1", n("enabled_exp")
	}
	if _, ok := h["nf_exp"]; ok {
		r.notFound, r.notFoundExp = true, n("nf_exp")
	}
	return r
}

// horizon is the last moment (unix ms) r can answer reads: the latest expiry of its status and QR.
func (r *record) horizon() int64 {
	var h int64
	if r.hasStatus {
		h = r.statusExp
	}
	if r.hasQR {
		h = max(h, r.qrExp)
	}
	return h
}

func (r *record) unknown(now int64) bool { return r.notFound && r.notFoundExp > now }

// fresh reports whether r can answer reads at now without asking Laravel: it holds an unexpired
// status or QR code.
func (r *record) fresh(now int64) bool {
	return (r.hasStatus && r.statusExp > now) || (r.hasQR && r.qrExp > now)
}

// qrCurrent reports whether r's QR code is the one to show at now: unexpired, and not superseded
// by a status change. A session shows a code only while pending, and each pairing reports pending
// before its first code, so a code older than the status belongs to an earlier pairing (or the
// session connected, expired or logged out since) however long its own TTL still runs.
func (r *record) qrCurrent(now int64) bool {
	if !r.hasQR || r.qrExp <= now || r.qr == "" {
		return false
	}
	if !r.hasStatus || r.statusExp <= now {
		return true
	}
	return laravel.Status(r.status) == laravel.StatusPending && r.qrV >= r.statusV
}

func (r *record) state(sid string, now int64, level string) State {
	s := State{SessionID: sid, Level: level}
	if r.hasStatus && r.statusExp > now {
		s.HasStatus, s.Status, s.StatusVersion = true, laravel.Status(r.status), r.statusV
	}
	if r.qrCurrent(now) {
		s.QR, s.QRVersion = r.qr, r.qrV
		s.QRGeneratedAt, s.QRExpiresAt = time.UnixMilli(r.qrAt).UTC(), time.UnixMilli(r.qrExp).UTC()
	}
	if r.hasEnabled && r.enabledExp > now {
		s.EnabledKnown, s.Enabled = true, r.enabled
	}
	return s
}

// mergeEvent applies ev to a copy of r when its version is newer.
func (r *record) mergeEvent(ev event.Event, exp, at int64) *record {
	c := *r
	switch ev.Kind {
	case event.KindStatus:
		if !c.hasStatus || ev.Version > c.statusV {
			c.hasStatus, c.status, c.statusV, c.statusExp = true, ev.Payload, ev.Version, exp
		}
	case event.KindQR:
		if !c.hasQR || ev.Version > c.qrV {
			c.hasQR, c.qr, c.qrV, c.qrAt, c.qrExp = true, ev.Payload, ev.Version, at, exp
		}
	}
	c.notFound = false
	return &c
}

// Counters are the cache's cumulative counts.
type Counters struct {
	L1Hits          int64 `json:"l1_hits"`
	L1Misses        int64 `json:"l1_misses"`
	L2Hits          int64 `json:"l2_hits"`
	L2Misses        int64 `json:"l2_misses"`
	L2Errors        int64 `json:"l2_errors"`
	L3Hits          int64 `json:"l3_hits"`
	L3Misses        int64 `json:"l3_misses"`
	L3Errors        int64 `json:"l3_errors"`
	L3Shared        int64 `json:"l3_shared"`
	NegativeHits    int64 `json:"negative_hits"`
	Writes          int64 `json:"writes"`
	StaleWrites     int64 `json:"stale_writes"`
	WriteErrors     int64 `json:"write_errors"`
	InvalidationsTx int64 `json:"invalidations_sent"`
	InvalidationsRx int64 `json:"invalidations_received"`
	L1Flushes       int64 `json:"l1_flushes"`
	// OwnerRenewals counts expired statuses of this gateway's own sessions renewed from their
	// live state instead of asking Laravel (renew.go).
	OwnerRenewals int64 `json:"owner_renewals"`
}

// Cache is the three-level session-state cache. It is safe for concurrent use.
type Cache struct {
	rdb    redis.UniversalClient
	reads  redis.UniversalClient // the read path's (Config.Reads)
	lookup SessionLookup
	cfg    Config
	log    *slog.Logger
	l1     *otter.Cache[string, *record]
	sf     singleflight.Group
	owed   owedWrites
	payers owedPayers

	l1Hits, l1Misses, l2Hits, l2Misses, l3Hits, l3Misses, l3Errors, l3Shared atomic.Int64
	negHits, writes, staleWrites, invTx, invRx, l1Flushes                    atomic.Int64
	recordErrors, l2Errors, renewals                                         atomic.Int64
	// writeWarnings keeps the write-through's warning to one line per writeWarningEvery
	// (recordErrors counts every failure).
	writeWarnings *lograte.Limiter
	// recorded counts Records by session, each in the stripe its id hashes to (recordedOf), so a
	// read checks for Records of its own session only (setL1).
	recorded   [recordStripes]atomic.Int64
	stripeSeed maphash.Seed

	// live is the sessions this gateway runs, whose statuses it renews (renew.go); nil: none.
	live atomic.Pointer[LocalReader]

	subscribed chan struct{}
	subOnce    sync.Once
	cancel     context.CancelFunc
	done       chan struct{}
}

var _ delivery.ActivityChecker = (*Cache)(nil)

type otterClock struct{ now func() time.Time }

func (c otterClock) NowNano() int64                      { return c.now().UnixNano() }
func (c otterClock) Tick(time.Duration) <-chan time.Time { return nil }

// writeWarningEvery is how often a failing write-through may log its warning: at a
// 10,000-session reconnect it failed 34,311 times in 20 s, one line each (issue 18).
const writeWarningEvery = time.Second

// New returns a Cache over rdb and lookup and starts listening for invalidations; Close stops it.
func New(ctx context.Context, rdb redis.UniversalClient, lookup SessionLookup, cfg Config) (*Cache, error) {
	cfg.fill()
	reads := cfg.Reads
	if reads == nil {
		reads = rdb
	}
	c := &Cache{rdb: rdb, reads: reads, lookup: lookup, cfg: cfg, log: cfg.Logger, subscribed: make(chan struct{}), owed: owedWrites{max: cfg.L1MaxSize},
		stripeSeed: maphash.MakeSeed(), writeWarnings: &lograte.Limiter{Every: writeWarningEvery, Now: cfg.Now}}
	l1, err := otter.New(&otter.Options[string, *record]{
		MaximumSize:      cfg.L1MaxSize,
		ExpiryCalculator: otter.ExpiryWritingFunc(c.l1Expiry),
		Clock:            otterClock{now: cfg.Now},
	})
	if err != nil {
		return nil, fmt.Errorf("cache: L1: %w", err)
	}
	c.l1 = l1
	ps := rdb.Subscribe(ctx, cfg.Channel)
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel, c.done = cancel, make(chan struct{})
	go c.listen(lctx, ps)
	return c, nil
}

// WaitSubscribed blocks until the invalidation subscription is live (or ctx ends).
func (c *Cache) WaitSubscribed(ctx context.Context) error {
	select {
	case <-c.subscribed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Cache) listen(ctx context.Context, ps *redis.PubSub) {
	defer close(c.done)
	defer ps.Close()
	ch := ps.ChannelWithSubscriptions(redis.WithChannelSize(1000))
	subs := 0
	for {
		select {
		case <-ctx.Done():
			return
		case msg, ok := <-ch:
			if !ok {
				return
			}
			switch m := msg.(type) {
			case *redis.Subscription:
				if m.Kind != "subscribe" {
					continue
				}
				subs++
				if subs == 1 {
					c.subOnce.Do(func() { close(c.subscribed) })
					continue
				}
				// A re-subscription means the connection dropped: invalidations may be lost.
				c.l1.InvalidateAll()
				c.l1Flushes.Add(1)
				c.log.Info("cache: Redis connection is back; flushed L1 (invalidations may have been missed)")
			case *redis.Message:
				origin, sid, found := strings.Cut(m.Payload, "|")
				if !found || origin == c.cfg.GatewayID {
					continue
				}
				// Dropped, then counted: whoever sees the count sees the entry gone (a test that
				// waited for the count read the owner's stale entry under -race in CI at b13134b).
				c.l1.Invalidate(sid)
				c.invRx.Add(1)
			}
		}
	}
}

// Close stops listening for invalidations.
func (c *Cache) Close() error {
	c.cancel()
	<-c.done
	c.payers.wg.Wait() // owed writes under way end within WriteTimeout
	c.l1.StopAllGoroutines()
	return nil
}

// l1Expiry is how long L1 keeps r: L1TTL, except for a session this gateway owns, which it keeps
// while the record is fresh (up to SessionTTL). An owned session's state changes only through
// this gateway's own writes (which update L1 in place), and any other writer publishes an
// invalidation, so the owner's polls of its own sessions are answered from memory instead of a
// Redis round trip every L1TTL.
func (c *Cache) l1Expiry(e otter.Entry[string, *record]) time.Duration {
	r := e.Value
	if r == nil || !r.owned {
		return c.cfg.L1TTL
	}
	left := time.Duration(r.horizon()-c.nowMs()) * time.Millisecond
	return min(max(left, c.cfg.L1TTL), c.cfg.SessionTTL)
}

func (c *Cache) key(sid string) string { return c.cfg.KeyPrefix + sid }

func (c *Cache) nowMs() int64 { return c.cfg.Now().UnixMilli() }

// recordScript writes one kind's fields and the owner (this gateway) when the version is newer,
// clears the not-found marker,
// extends the key's TTL and updates the live-key indexes. It returns 1 when it wrote.
var recordScript = redis.NewScript(`
local f = ARGV[1]
if redis.call('HEXISTS', KEYS[1], f .. '_v') == 1 and tonumber(redis.call('HGET', KEYS[1], f .. '_v')) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('HSET', KEYS[1], f, ARGV[2], f .. '_v', ARGV[3], f .. '_exp', ARGV[4], f .. '_at', ARGV[6], 'owner', ARGV[8])
redis.call('HDEL', KEYS[1], 'nf_exp')
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[5]) then redis.call('PEXPIRE', KEYS[1], ARGV[5]) end
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[7])
local s = redis.call('ZSCORE', KEYS[3], ARGV[7])
if not s or tonumber(s) < tonumber(ARGV[4]) then redis.call('ZADD', KEYS[3], ARGV[4], ARGV[7]) end
return 1
`)

func (c *Cache) ttlFor(ev event.Event) time.Duration {
	if ev.Kind == event.KindQR {
		return c.cfg.QRTTL
	}
	return c.statusTTL(ev.Payload)
}

// statusTTL is how long a status is trusted: ConnectionTTL for connected and disconnected,
// StatusTTL for the others.
func (c *Cache) statusTTL(status string) time.Duration {
	switch laravel.Status(status) {
	case laravel.StatusConnected, laravel.StatusDisconnected:
		return c.cfg.ConnectionTTL
	}
	return c.cfg.StatusTTL
}

func (c *Cache) indexKey(kind string) string { return c.cfg.IndexPrefix + kind }

// Record writes a session event through L1 and L2 (only if its version is newer than what is
// cached) and tells other gateways to drop their L1 copy. The gateway calls it for each of its own
// events when it hands them to delivery.
func (c *Cache) Record(ctx context.Context, ev event.Event) error {
	if err := ev.Validate(); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	now := c.nowMs()
	exp, at := now+c.ttlFor(ev).Milliseconds(), eventTime(ev, now)
	err := c.writeL2(ctx, ev, now)
	// Then L1 (kept even when L2 failed: this gateway knows the state before anyone else). A read
	// that read L2 before this write must not keep what it read in L1 (setL1): the owner's L1
	// entry lives up to SessionTTL and no invalidation of its own writes reaches it.
	c.recordedOf(ev.SessionID).Add(1)
	c.l1.Compute(ev.SessionID, func(old *record, found bool) (*record, otter.ComputeOp) {
		if !found {
			return nil, otter.CancelOp
		}
		m := old.mergeEvent(ev, exp, at)
		m.owned = true
		return m, otter.WriteOp
	})
	return err
}

// recordStripes is how many counters Records are counted in. A read's L1 set is dropped when its
// session's stripe moved during the read (setL1). With one counter for all sessions, any
// session's Record dropped every read under way: while many sessions pair or reconnect, the reads
// that missed L1 (first reads, expiries) kept missing it, and the slower Redis answered the more
// of them were dropped (BenchmarkReadsWhileOtherSessionsRecord). With 1024 stripes a read is
// dropped only by a Record of its own session or, rarely, of one sharing its stripe (a spurious
// drop costs one more L2 read, never a wrong answer).
const recordStripes = 1024

// recordedOf is the counter of the Records of sid (and of the sessions sharing its stripe).
func (c *Cache) recordedOf(sid string) *atomic.Int64 {
	return &c.recorded[maphash.String(c.stripeSeed, sid)%recordStripes]
}

// setL1 keeps r, read from L2 or Laravel by a read that began when recordedOf(sid) was gen, in
// L1, unless a Record of sid landed meanwhile: its L1 update may have missed the entry (absent
// then) and r may be older than its write, so the entry is dropped and the next read reads L2
// again.
func (c *Cache) setL1(sid string, r *record, gen int64) {
	c.l1.Set(sid, r)
	if c.recordedOf(sid).Load() != gen {
		c.l1.Invalidate(sid)
	}
}

// writeL2 writes ev, recorded at now (unix ms), to L2 when its version is newer and announces
// it; a write that succeeds pays off any owed event it is as new as.
func (c *Cache) writeL2(ctx context.Context, ev event.Event, now int64) error {
	ttl := c.ttlFor(ev)
	field := string(ev.Kind) // "qr" or "status"
	keyTTL := max(ttl, c.cfg.SessionTTL)
	wrote, err := recordScript.Run(ctx, c.rdb,
		[]string{c.key(ev.SessionID), c.indexKey(field), c.indexKey("all")},
		field, ev.Payload, ev.Version, now+ttl.Milliseconds(), keyTTL.Milliseconds(), eventTime(ev, now), ev.SessionID, c.cfg.GatewayID).Int()
	if err != nil {
		return fmt.Errorf("cache: write session %s: %w", ev.SessionID, err)
	}
	c.owed.paid(ev)
	c.writes.Add(1)
	if wrote == 0 {
		c.staleWrites.Add(1)
	}
	if err := c.rdb.Publish(ctx, c.cfg.Channel, c.cfg.GatewayID+"|"+ev.SessionID).Err(); err != nil {
		return fmt.Errorf("cache: publish invalidation of %s: %w", ev.SessionID, err)
	}
	c.invTx.Add(1)
	return nil
}

// State returns what is known about a session, reading L1, then L2, then Laravel. A session
// Laravel does not know gives an error matching ErrUnknownSession.
func (c *Cache) State(ctx context.Context, sid string) (State, error) {
	gen := c.recordedOf(sid).Load()
	now := c.nowMs()
	if r, ok := c.l1.GetIfPresent(sid); ok {
		if r.unknown(now) {
			c.negHits.Add(1)
			c.l1Hits.Add(1)
			return State{SessionID: sid, Level: "l1"}, fmt.Errorf("cache: session %s: %w", sid, ErrUnknownSession)
		}
		if r.fresh(now) {
			c.l1Hits.Add(1)
			return r.state(sid, now, "l1"), nil
		}
		if n := c.renew(ctx, sid, r, now, gen); n != nil {
			c.l1Hits.Add(1)
			return n.state(sid, now, "l1"), nil
		}
	}
	c.l1Misses.Add(1)
	h, err := c.reads.HGetAll(ctx, c.key(sid)).Result()
	if err != nil {
		c.l2Errors.Add(1)
		// Redis is down: the gateway's own events it could not write answer first (owed.go);
		// else Laravel still knows (the legacy path), so reads degrade instead of failing.
		if r := c.withOwed(ctx, sid, &record{}, false); r.fresh(now) {
			c.setL1(sid, r, gen)
			return r.state(sid, now, "l1"), nil
		}
		c.log.Warn("cache: Redis read failed; asking Laravel", "session_id", sid, "err", err)
		return c.fromLaravel(ctx, sid, gen)
	}
	r := c.withOwed(ctx, sid, parseRecord(h, c.cfg.GatewayID), true)
	if r.unknown(now) {
		c.negHits.Add(1)
		c.l2Hits.Add(1)
		c.setL1(sid, r, gen)
		return State{SessionID: sid, Level: "l2"}, fmt.Errorf("cache: session %s: %w", sid, ErrUnknownSession)
	}
	if r.fresh(now) {
		c.l2Hits.Add(1)
		c.setL1(sid, r, gen)
		return r.state(sid, now, "l2"), nil
	}
	if n := c.renew(ctx, sid, r, now, gen); n != nil {
		c.l2Hits.Add(1)
		return n.state(sid, now, "l2"), nil
	}
	c.l2Misses.Add(1)
	return c.fromLaravel(ctx, sid, gen)
}

// IsSessionActive answers isSessionActive through the cache (delivery.ActivityChecker). An
// unknown session is not active (and not an error).
func (c *Cache) IsSessionActive(ctx context.Context, sid string) (bool, error) {
	s, err := c.State(ctx, sid)
	if errors.Is(err, ErrUnknownSession) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return s.Active(), nil
}

// fromLaravelScript stores Laravel's answer: each kind only if newer, the enabled flag always.
var fromLaravelScript = redis.NewScript(`
local function put(f, val, ver, exp, at)
  if redis.call('HEXISTS', KEYS[1], f .. '_v') == 1 and tonumber(redis.call('HGET', KEYS[1], f .. '_v')) >= tonumber(ver) then
    if tonumber(redis.call('HGET', KEYS[1], f .. '_exp') or '0') < tonumber(exp) and redis.call('HGET', KEYS[1], f .. '_v') == ver then
      redis.call('HSET', KEYS[1], f .. '_exp', exp)
    end
    return
  end
  redis.call('HSET', KEYS[1], f, val, f .. '_v', ver, f .. '_exp', exp, f .. '_at', at)
end
put('status', ARGV[1], ARGV[2], ARGV[3], ARGV[9])
if ARGV[4] ~= '' then put('qr', ARGV[4], ARGV[5], ARGV[6], ARGV[9]) end
redis.call('HSET', KEYS[1], 'enabled', ARGV[7], 'enabled_exp', ARGV[8])
redis.call('HDEL', KEYS[1], 'nf_exp')
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[10]) then redis.call('PEXPIRE', KEYS[1], ARGV[10]) end
return redis.call('HGETALL', KEYS[1])
`)

var notFoundScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], 'status') == 1 or redis.call('HEXISTS', KEYS[1], 'qr') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'nf_exp', ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
`)

func (c *Cache) fromLaravel(ctx context.Context, sid string, gen int64) (State, error) {
	v, err, shared := c.sf.Do(sid, func() (any, error) {
		// Detached from one caller's cancellation: the result serves every waiter.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), laravel.DefaultTimeout)
		defer cancel()
		info, err := c.lookup.GetSession(lctx, sid)
		now := c.cfg.Now()
		if errors.Is(err, laravel.ErrNotFound) {
			c.l3Misses.Add(1)
			exp := now.Add(c.cfg.NegativeTTL).UnixMilli()
			if err := notFoundScript.Run(lctx, c.reads, []string{c.key(sid)}, exp, c.cfg.NegativeTTL.Milliseconds()).Err(); err != nil {
				c.log.Warn("cache: could not store a negative entry", "session_id", sid, "err", err)
			}
			return &record{notFound: true, notFoundExp: exp}, nil
		}
		if err != nil {
			c.l3Errors.Add(1)
			return nil, err
		}
		c.l3Hits.Add(1)
		ttl := c.cfg.StatusTTL
		if info.EstadoQR == laravel.StatusConnected || info.EstadoQR == laravel.StatusDisconnected {
			ttl = c.cfg.ConnectionTTL
		}
		enabled := "0"
		if info.Enabled {
			enabled = "1"
		}
		at := info.UpdatedAt.UnixMilli()
		// Laravel's code is as old as its row's last update at least: it expires QRTTL after
		// that, not QRTTL after this lookup.
		qrExp := now.Add(c.cfg.QRTTL)
		if !info.UpdatedAt.IsZero() && info.UpdatedAt.Add(c.cfg.QRTTL).Before(qrExp) {
			qrExp = info.UpdatedAt.Add(c.cfg.QRTTL)
		}
		keyTTL := max(ttl, c.cfg.SessionTTL, c.cfg.QRTTL)
		h, err := fromLaravelScript.Run(lctx, c.reads, []string{c.key(sid)},
			string(info.EstadoQR), info.StatusVersion, now.Add(ttl).UnixMilli(),
			info.QR, info.QRVersion, qrExp.UnixMilli(),
			enabled, now.Add(c.cfg.SessionTTL).UnixMilli(), at, keyTTL.Milliseconds()).StringSlice()
		if err != nil {
			c.log.Warn("cache: could not store Laravel's answer in Redis", "session_id", sid, "err", err)
			r := &record{hasStatus: true, status: string(info.EstadoQR), statusV: info.StatusVersion,
				statusExp: now.Add(ttl).UnixMilli(), hasEnabled: true, enabled: info.Enabled, enabledExp: now.Add(c.cfg.SessionTTL).UnixMilli()}
			return r, nil
		}
		m := make(map[string]string, len(h)/2)
		for i := 0; i+1 < len(h); i += 2 {
			m[h[i]] = h[i+1]
		}
		// Laravel's answer may have changed the enabled flag under an owner's long-lived L1 entry.
		if err := c.reads.Publish(lctx, c.cfg.Channel, c.cfg.GatewayID+"|"+sid).Err(); err != nil {
			c.log.Warn("cache: could not publish an invalidation", "session_id", sid, "err", err)
		} else {
			c.invTx.Add(1)
		}
		return parseRecord(m, c.cfg.GatewayID), nil
	})
	if shared {
		c.l3Shared.Add(1)
	}
	if err != nil {
		return State{SessionID: sid}, fmt.Errorf("cache: Laravel lookup of %s: %w", sid, err)
	}
	r := v.(*record)
	c.setL1(sid, r, gen)
	now := c.nowMs()
	if r.unknown(now) {
		return State{SessionID: sid, Level: "l3"}, fmt.Errorf("cache: session %s: %w", sid, ErrUnknownSession)
	}
	return r.state(sid, now, "l3"), nil
}

// Invalidate drops a session from L1 here and, through pub/sub, in every other gateway.
func (c *Cache) Invalidate(ctx context.Context, sid string) error {
	c.l1.Invalidate(sid)
	if err := c.rdb.Publish(ctx, c.cfg.Channel, c.cfg.GatewayID+"|"+sid).Err(); err != nil {
		return fmt.Errorf("cache: publish invalidation of %s: %w", sid, err)
	}
	c.invTx.Add(1)
	return nil
}

// FlushL1 empties L1 (counted like a reconnect flush).
func (c *Cache) FlushL1() {
	c.l1.InvalidateAll()
	c.l1Flushes.Add(1)
}

// Counters returns the cumulative counts.
func (c *Cache) Counters() Counters {
	return Counters{
		L1Hits: c.l1Hits.Load(), L1Misses: c.l1Misses.Load(), L2Hits: c.l2Hits.Load(), L2Misses: c.l2Misses.Load(), L2Errors: c.l2Errors.Load(),
		L3Hits: c.l3Hits.Load(), L3Misses: c.l3Misses.Load(), L3Errors: c.l3Errors.Load(), L3Shared: c.l3Shared.Load(),
		NegativeHits: c.negHits.Load(), Writes: c.writes.Load(), StaleWrites: c.staleWrites.Load(), WriteErrors: c.recordErrors.Load(),
		InvalidationsTx: c.invTx.Load(), InvalidationsRx: c.invRx.Load(), L1Flushes: c.l1Flushes.Load(),
		OwnerRenewals: c.renewals.Load(),
	}
}

// KeyCounts are the live cache keys in Redis.
type KeyCounts struct {
	Total  int64 `json:"totalKeys"`
	QR     int64 `json:"qrKeys"`
	Status int64 `json:"statusKeys"`
}

// KeyCounts counts live (unexpired) session keys, and those with a live QR or status, from the
// indexes the writes maintain; it trims expired index members.
func (c *Cache) KeyCounts(ctx context.Context) (KeyCounts, error) {
	now := strconv.FormatInt(c.nowMs(), 10)
	var cmds [3]*redis.IntCmd
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range []string{"all", "qr", "status"} {
			p.ZRemRangeByScore(ctx, c.indexKey(k), "-inf", now)
			cmds[i] = p.ZCount(ctx, c.indexKey(k), "("+now, "+inf")
		}
		return nil
	})
	if err != nil {
		return KeyCounts{}, fmt.Errorf("cache: count keys: %w", err)
	}
	return KeyCounts{Total: cmds[0].Val(), QR: cmds[1].Val(), Status: cmds[2].Val()}, nil
}

// L1Size returns the approximate number of L1 entries.
func (c *Cache) L1Size() int { return c.l1.EstimatedSize() }
