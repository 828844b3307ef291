package outbox

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Noticing a Redis that lost its data. The outbox keeps a marker key in Redis holding a
// generation number, created by the first gateway that finds it missing. A Redis restarted
// without its data (no persistence, a lost volume, a failover to an empty replica) comes back
// without the marker, and without the outbox's undelivered events: the keeper notices (every
// MarkerCheck, and at once after Redis errors end), creates a new generation and calls
// OnDataLost, so the gateway sends every session's current state again with new versions. Every
// gateway sharing the Redis notices, since each compares the marker with the generation it saw.
// The caller keeps the generation it last saw across its own restarts (Generation) to tell, at
// start, whether Redis lost its data while it was down.

// readGeneration returns the marker's generation, creating one when the marker is missing
// (created reports that this call created it).
func (o *Outbox) readGeneration(ctx context.Context) (gen int64, created bool, err error) {
	v, err := o.rdb.Get(ctx, o.cfg.MarkerKey).Result()
	if errors.Is(err, redis.Nil) {
		fresh := rand.Int64N(1<<62) + 1
		ok, setErr := o.rdb.SetNX(ctx, o.cfg.MarkerKey, fresh, 0).Result()
		if setErr != nil {
			return 0, false, fmt.Errorf("outbox: create marker %s: %w", o.cfg.MarkerKey, setErr)
		}
		if ok {
			return fresh, true, nil
		}
		// Another gateway created it between the GET and the SETNX: read theirs (this err is the
		// one checked below; a shadowed one left redis.Nil there and failed the start).
		v, err = o.rdb.Get(ctx, o.cfg.MarkerKey).Result()
	}
	if err != nil {
		return 0, false, fmt.Errorf("outbox: read marker %s: %w", o.cfg.MarkerKey, err)
	}
	gen, err = strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("outbox: marker %s holds %q, not a generation: %w", o.cfg.MarkerKey, v, err)
	}
	return gen, false, nil
}

// Generation returns the generation of the Redis data this outbox last saw (see OnDataLost).
func (o *Outbox) Generation() int64 { return o.generation.Load() }

// CheckGeneration compares the marker with the generation last seen; when it changed (Redis lost
// its data), it recreates the consumer group, remembers the new generation, logs it and calls
// OnDataLost. It returns whether the data was lost. The keeper calls it every MarkerCheck.
func (o *Outbox) CheckGeneration(ctx context.Context) (bool, error) {
	o.genMu.Lock()
	defer o.genMu.Unlock()
	gen, _, err := o.readGeneration(ctx)
	if err != nil {
		return false, err
	}
	restarted := false
	if g, ok, err := o.restartedGeneration(ctx); err != nil {
		return false, err
	} else if ok {
		gen, restarted = g, true
	}
	old := o.generation.Load()
	streamGone := false
	if gen == old {
		// The marker survived; the stream may not have (an evicting policy takes the cold stream
		// and keeps the marker this check reads every second), and while the flusher does not
		// read (the breaker open) nothing else would tell.
		g, lost, err := o.restoreGroup(ctx, false)
		if err != nil {
			return false, err
		}
		if !lost {
			return false, nil
		}
		gen, streamGone = g, true
	}
	o.generation.Store(gen)
	o.lossHandled = time.Now()
	switch {
	case streamGone:
		o.log.Error("outbox: the outbox stream is gone under an intact marker (evicted: an allkeys-* maxmemory-policy, or deleted): undelivered events are lost; sending every session's current state again and appending the journal's unsettled messages again",
			"stream", o.cfg.Stream, "marker", o.cfg.MarkerKey, "old_generation", old, "generation", gen)
	case restarted:
		o.log.Error("outbox: Redis restarted (its run_id changed): the writes of its last second may be lost (appendfsync everysec); sending every session's current state again and appending the journal's unsettled messages again",
			"marker", o.cfg.MarkerKey, "old_generation", old, "generation", gen, "run_id", o.runID)
	default:
		o.log.Error("outbox: Redis lost its data (the outbox marker is gone or was renewed after a lost stream): undelivered events are lost; sending every session's current state again",
			"marker", o.cfg.MarkerKey, "old_generation", old, "generation", gen)
	}
	if err := o.ensureGroup(ctx); err != nil {
		o.log.Warn("outbox: recreating the consumer group failed; the next read retries", "err", err)
	}
	o.lastLen.Store(0)
	o.dataLost.Add(1)
	if f := o.cfg.OnDataLost; f != nil {
		f(gen)
	}
	return true, nil
}

// restartedGeneration notices a Redis server that restarted since the last check (its run_id
// changed) although the marker survived: a restart on AOF with `appendfsync everysec` (Redis's
// default) can lose the writes of its last second, entries and their once-only keys included,
// while every older key (the marker) comes back. Chaos seed 2 schedule 57: three customers'
// messages appended and acknowledged to WhatsApp within the second before a SIGKILL were gone
// after the restart and nothing appended them again. Such a restart counts as a data loss: the
// marker is overwritten with a generation derived from the new run_id, the same value every
// gateway sharing this Redis writes, so each of them notices one loss, sends every state again
// (new versions; harmless when nothing was lost) and appends its journal again (what survived is
// found by its once-only key). It reports ok with that generation on a restart; a server that
// does not give its run_id (miniredis) is never taken for restarted. Callers hold genMu.
func (o *Outbox) restartedGeneration(ctx context.Context) (gen int64, ok bool, err error) {
	runID := o.serverRunID(ctx)
	if runID == "" {
		return 0, false, nil
	}
	prev := o.runID
	o.setRunID(runID)
	if prev == "" || prev == runID {
		return 0, false, nil
	}
	gen = runNumber(runID)
	if err := o.rdb.Set(ctx, o.cfg.MarkerKey, gen, 0).Err(); err != nil {
		o.setRunID(prev) // checked again next time
		return 0, false, fmt.Errorf("outbox: new generation after a Redis restart: %w", err)
	}
	return gen, true, nil
}

// serverRunID returns the Redis server's run_id, "" when it does not say (no INFO server, as
// miniredis, or an error: the marker alone decides then).
func (o *Outbox) serverRunID(ctx context.Context) string {
	info, err := o.rdb.Info(ctx, "server").Result()
	if err != nil {
		return ""
	}
	return infoField(info, "run_id")
}

// setRunID remembers the server's run_id and its number (Run). Callers hold genMu (or own o).
func (o *Outbox) setRunID(runID string) {
	o.runID = runID
	if runID == "" {
		o.run.Store(0)
		return
	}
	o.run.Store(runNumber(runID))
}

// runNumber is the number naming a Redis server's run (its run_id hashed into a positive int64):
// Run's value, and the generation every gateway writes when it notices that run begin.
func runNumber(runID string) int64 {
	h := fnv.New64a()
	h.Write([]byte(runID))
	return int64(h.Sum64()&(1<<62-1)) + 1
}

// Run returns a number naming the run of the Redis server this outbox last talked to (derived
// from its run_id, which changes at every server start), 0 when the server does not tell
// (miniredis). The caller records it with the generation (Generation) it works with, so that its
// next start can tell a server that restarted meanwhile (RestartedSince).
func (o *Outbox) Run() int64 { return o.run.Load() }

// RestartedSince tells, at a gateway's start, whether the Redis server restarted since the run
// the gateway recorded (run, from Run; 0: none recorded, a first start: no). A restart while no
// gateway ran is the loss the keeper notices in a running gateway (restartedGeneration: the last
// second of writes of a server on AOF with appendfsync everysec, the marker kept): it is handled
// the same way, with the same generation, the one derived from the new run_id, written to the
// marker and taken as this outbox's generation. Every gateway, starting or running, that
// notices that restart thus arrives at one generation and counts one loss: the caller, finding
// the generation it recorded differs, sends every state again and replays the journal.
// Call it before Start, after reading what was recorded (so that a gateway that recorded the
// new run since cannot have been read before this outbox read the marker).
func (o *Outbox) RestartedSince(ctx context.Context, run int64) (bool, error) {
	o.genMu.Lock()
	defer o.genMu.Unlock()
	now := o.run.Load()
	if run == 0 || now == 0 || run == now {
		return false, nil
	}
	old := o.generation.Load()
	if err := o.rdb.Set(ctx, o.cfg.MarkerKey, now, 0).Err(); err != nil {
		return false, fmt.Errorf("outbox: new generation after a Redis restart while the gateway was down: %w", err)
	}
	o.generation.Store(now)
	o.lossHandled = time.Now()
	o.log.Error("outbox: Redis restarted while this gateway was down (its run_id is not the one recorded): the writes of its last second may be lost (appendfsync everysec); sending every session's current state again and appending the journal's unsettled messages again",
		"marker", o.cfg.MarkerKey, "old_generation", old, "generation", now, "run_id", o.runID)
	return true, nil
}

// infoField returns the value of name in an INFO answer ("name:value" lines), "" when absent.
func infoField(info, name string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return ""
}

// restoreGroupScript creates the consumer group (KEYS[1] the stream, ARGV[1] the group, from the
// stream's beginning, creating the stream) and, when it was missing, writes a fresh generation
// (ARGV[2]) to the marker (KEYS[2]) in the same step, returning 1; 0 when the group was there. A
// missing group means the stream was removed (evicted, deleted, or Redis lost its data) with its
// undelivered events, unless ARGV[3] is "start" and the stream exists: a replica starting for the
// first time in cluster mode creates its own group. One step, so that of the gateways racing to
// restore a group exactly one writes the new generation, and none restores it unnoticed.
var restoreGroupScript = redis.NewScript(`
local existed = redis.call('EXISTS', KEYS[1]) == 1
local r = redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')
if type(r) == 'table' and r.err then
  if string.sub(r.err, 1, 9) == 'BUSYGROUP' then return 0 end
  return r
end
if ARGV[3] == 'start' and existed then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
return 1
`)

// restoreGroup makes sure the consumer group exists; when it had to create it (the stream or
// its group was gone), it wrote a fresh generation to the marker and returns it with lost true.
// atStart: called by New, where a missing group of a stream that exists is a new replica's own
// group (cluster mode), not a loss.
func (o *Outbox) restoreGroup(ctx context.Context, atStart bool) (gen int64, lost bool, err error) {
	fresh := rand.Int64N(1<<62) + 1
	mode := "running"
	if atStart {
		mode = "start"
	}
	n, err := restoreGroupScript.Run(ctx, o.rdb, []string{o.cfg.Stream, o.cfg.MarkerKey}, o.cfg.Group, fresh, mode).Int()
	if err != nil {
		return 0, false, fmt.Errorf("outbox: create group %s on %s: %w", o.cfg.Group, o.cfg.Stream, err)
	}
	return fresh, n == 1, nil
}

// groupVanished handles a consumer group found missing while the gateway runs (a read, a claim or
// a touch answered NOGROUP): the stream or its group was removed (a Redis restarted without its
// data, an allkeys-* policy set at runtime that evicted the stream but not the marker, a DEL),
// and the undelivered events with it. The marker alone would not tell when it survived, so the
// group is restored with a fresh generation (restoreGroup): the keeper of every gateway sharing
// this Redis then sees the change, sends every session's current state again and replays the
// journal. Restoring the group any other way would hide the loss from every later check (chaos
// seed 1 schedule 180: the delivery's touch of the entries it held, the breaker keeping the
// flusher off the stream, recreated the group of an evicted stream; 12 customers' messages were
// lost unnoticed). A read sent before this outbox's keeper handled a loss (sent: when the
// request that met the missing group was sent) saw that loss, already handled: the group is
// made sure of without a second generation then (chaos seed 2 schedule 76 sent every state
// again and replayed the journal twice, 4 ms apart, when the flusher's read, answered after the
// keeper had recreated the group, started a new generation).
func (o *Outbox) groupVanished(ctx context.Context, sent time.Time) error {
	o.genMu.Lock()
	handled := o.lossHandled.After(sent)
	o.genMu.Unlock()
	if handled {
		return o.ensureGroup(ctx)
	}
	_, lost, err := o.restoreGroup(ctx, false)
	if err != nil {
		return err
	}
	if lost {
		o.log.Warn("outbox: consumer group missing (Redis restarted without persistence, or evicted or lost the stream); recreated with a new generation", "stream", o.cfg.Stream, "group", o.cfg.Group)
		o.checkSoon()
	}
	return nil
}

// checkSoon asks the keeper to check the marker now (Redis answered again after errors).
func (o *Outbox) checkSoon() {
	select {
	case o.checkNow <- struct{}{}:
	default:
	}
}

// Start runs the keeper until Close: it checks the marker every MarkerCheck (and when asked after
// Redis errors), reads Redis's maxmemory-policy every PolicyCheck (policy.go) and removes
// consumers of gone gateways every ConsumerSweep.
func (o *Outbox) Start(ctx context.Context) {
	o.keeperOnce.Do(func() {
		kctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		o.stopKeeper = cancel
		o.keeperDone = make(chan struct{})
		go o.keep(kctx)
	})
}

// Close stops the keeper (appends still waiting keep their own deadlines) and marks this
// consumer closed, so that an outbox of the same gateway created later in this process takes
// over what it left pending.
func (o *Outbox) Close() {
	closedHere.Store(o.cfg.Consumer, struct{}{})
	if o.stopKeeper != nil {
		o.stopKeeper()
		<-o.keeperDone
	}
}

func (o *Outbox) keep(ctx context.Context) {
	defer close(o.keeperDone)
	check := time.NewTicker(o.cfg.MarkerCheck)
	defer check.Stop()
	sweep := time.NewTicker(o.cfg.ConsumerSweep)
	defer sweep.Stop()
	policy := time.NewTicker(o.cfg.PolicyCheck)
	defer policy.Stop()
	_ = o.CheckEvictionPolicy(ctx)
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-check.C:
		case <-o.checkNow:
			// Redis answers again: perhaps another server (a failover), with another policy.
			_ = o.CheckEvictionPolicy(ctx)
		case <-policy.C:
			// Its error is the answer: logged when the policy changes, reported by EvictionRisk.
			_ = o.CheckEvictionPolicy(ctx)
			continue
		case <-sweep.C:
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if _, err := o.tidyConsumers(sctx, false); err != nil && ctx.Err() == nil {
				o.log.Warn("outbox: removing gone consumers failed; retrying later", "err", err)
			}
			cancel()
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := o.CheckGeneration(cctx)
		cancel()
		if err != nil && ctx.Err() == nil && !failing {
			o.log.Warn("outbox: cannot check the Redis marker; retrying", "err", err)
		}
		failing = err != nil
	}
}
