package cache

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// The owner's renewal. A status expires (ConnectionTTL: 60 s for connected and disconnected)
// so that a gateway that died cannot leave it in Redis for ever, and an expired status used to
// be refreshed from Laravel's session lookup: one GET /api/whatsapp/sessions/{id} per polled
// session per minute, 38% of Laravel's requests at seed-batch-100, although the gateway running
// the session knows its live state better than Laravel does (Laravel only holds what this
// gateway sent it). So the owner renews instead: when its own session's status has expired and
// the session it runs still has that status at that version (nothing newer happened), the
// status's expiry is extended in L1 and in L2 without asking Laravel.
//
// Laravel's enabled flag is still honoured: the renewal needs the flag to be known and within
// SessionTTL (Laravel's answer's lifetime, 5 min), so an owned session is looked up in Laravel
// once per SessionTTL instead of once per ConnectionTTL, and a session Laravel disabled stops
// being active within SessionTTL + ConnectionTTL. Nothing else changes: a record another gateway
// wrote, a version the owner no longer holds (an event not yet written through, or a newer one),
// a session the owner does not run, or Redis refusing the renewal fall through to the lookup.

// RenewFrom names the sessions this gateway runs (the session manager) as the source the cache
// renews their expired statuses from instead of asking Laravel (see above). Without it (or for a
// session local does not know) an expired status is refreshed from Laravel.
func (c *Cache) RenewFrom(local LocalReader) {
	c.live.Store(&local)
}

// renewScript extends a status's expiry when this gateway (ARGV[4]) still owns the record and it
// holds the status at version ARGV[1]; it keeps the key and the live-key indexes as recordScript
// does. It returns 1 when it renewed.
var renewScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[4] or redis.call('HGET', KEYS[1], 'status_v') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'status_exp', ARGV[2])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[5])
local s = redis.call('ZSCORE', KEYS[3], ARGV[5])
if not s or tonumber(s) < tonumber(ARGV[2]) then redis.call('ZADD', KEYS[3], ARGV[2], ARGV[5]) end
return 1
`)

// renewable reports whether r's expired status may be renewed from the owner's live state at now
// (unix ms): this gateway wrote it, Laravel's enabled flag is still trusted, and the session this
// gateway runs holds that status at that version.
func (c *Cache) renewable(ctx context.Context, sid string, r *record, now int64) bool {
	if !r.owned || !r.hasStatus || r.statusExp > now || r.notFound || !r.hasEnabled || r.enabledExp <= now {
		return false
	}
	lp := c.live.Load()
	if lp == nil {
		return false
	}
	info, err := (*lp).Get(ctx, sid)
	return err == nil && string(info.Status) == r.status && info.Version == r.statusV
}

// renew extends r's expired status when renewable, in L2 then in L1 (setL1 with gen), and
// returns the renewed record; nil when the status is not renewable or Redis did not renew it (the caller then asks
// Laravel as before).
func (c *Cache) renew(ctx context.Context, sid string, r *record, now, gen int64) *record {
	if !c.renewable(ctx, sid, r, now) {
		return nil
	}
	ttl := c.statusTTL(r.status)
	exp := now + ttl.Milliseconds()
	keyTTL := max(ttl, c.cfg.SessionTTL)
	wctx, cancel := context.WithTimeout(ctx, c.cfg.WriteTimeout)
	defer cancel()
	ok, err := renewScript.Run(wctx, c.reads, []string{c.key(sid), c.indexKey("status"), c.indexKey("all")},
		r.statusV, exp, keyTTL.Milliseconds(), c.cfg.GatewayID, sid).Int()
	if err != nil || ok == 0 {
		return nil
	}
	n := *r
	n.statusExp = exp
	c.setL1(sid, &n, gen)
	c.renewals.Add(1)
	return &n
}
