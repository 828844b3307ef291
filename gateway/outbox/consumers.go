package outbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Consumer names. Each Outbox reads the group under a name unique to its process incarnation,
// "<gateway id>/<host>/<pid>/<process start>/<n>", so two processes on one host never share a
// consumer (and its pending entries), and a restarted gateway can tell its previous
// incarnations' consumers (same gateway id, process gone) from live ones. At New it adopts what
// those predecessors left pending (claims it into its own consumer, so reading its own pending
// entries recovers it at once) and removes them; consumers of any gateway that stayed idle beyond
// ConsumerGoneAfter with nothing pending are removed too, so restarted pods do not accumulate
// dead consumers in the group.

var (
	// processStart tells this process apart from an earlier one that had the same pid (a
	// restarted container's pid 1).
	processStart = strconv.FormatInt(time.Now().UnixMilli(), 36)
	// incarnationSeq tells apart several outboxes of one process (tests, tools).
	incarnationSeq atomic.Int64
	// closedHere holds the consumer names of this process's closed outboxes: a gateway restarted
	// inside one process (tests, an embedding program) takes over what they left pending.
	closedHere sync.Map
)

// incarnation is a parsed consumer name.
type incarnation struct {
	gatewayID string
	host      string
	pid       int
	start     string
	seq       string
}

func (in incarnation) name() string {
	return in.gatewayID + "/" + in.host + "/" + strconv.Itoa(in.pid) + "/" + in.start + "/" + in.seq
}

// newIncarnation names this process's next consumer of gatewayID.
func newIncarnation(gatewayID string) incarnation {
	return incarnation{gatewayID: gatewayID, host: hostName(), pid: os.Getpid(), start: processStart,
		seq: strconv.FormatInt(incarnationSeq.Add(1), 10)}
}

func hostName() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "gateway"
	}
	return h
}

// parseIncarnation parses a consumer name built by incarnation.name; the gateway id may itself
// contain slashes (the last four fields are fixed).
func parseIncarnation(name string) (incarnation, bool) {
	parts := strings.Split(name, "/")
	if len(parts) < 5 {
		return incarnation{}, false
	}
	n := len(parts)
	pid, err := strconv.Atoi(parts[n-3])
	if err != nil || pid <= 0 {
		return incarnation{}, false
	}
	in := incarnation{gatewayID: strings.Join(parts[:n-4], "/"), host: parts[n-4], pid: pid, start: parts[n-2], seq: parts[n-1]}
	if in.gatewayID == "" || in.host == "" || in.start == "" || in.seq == "" {
		return incarnation{}, false
	}
	return in, true
}

// predecessorGone reports whether the consumer named other is an earlier incarnation of self's
// gateway whose process no longer runs, so that self may take over its pending entries at once.
//   - A consumer named exactly the gateway id is this gateway's consumer from before unique names.
//   - Another host: a gateway id is unique among live gateways, so it is an earlier incarnation
//     (a pod rescheduled elsewhere).
//   - The same host and pid: gone when its process started at another time (a restarted
//     container gets the same pid); in this process, gone once that outbox was closed (closed).
//   - The same host, another pid: gone when that process no longer runs (pidAlive).
func predecessorGone(self incarnation, other string, pidAlive func(pid int) bool, closed func(name string) bool) bool {
	if other == self.gatewayID {
		return true
	}
	o, ok := parseIncarnation(other)
	if !ok || o.gatewayID != self.gatewayID || other == self.name() {
		return false
	}
	switch {
	case o.host != self.host:
		return true
	case o.pid == self.pid:
		return o.start != self.start || closed(other)
	default:
		return !pidAlive(o.pid)
	}
}

// processAlive reports whether a process with this pid runs on this host (a zombie does not).
func processAlive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false
		}
		return true // cannot tell: assume alive, the idle rule still applies later
	}
	// pid (comm) state ...: the state follows the last ')'.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return true
	}
	switch s[i+2] {
	case 'Z', 'X':
		return false
	}
	return true
}

func closedInProcess(name string) bool {
	_, ok := closedHere.Load(name)
	return ok
}

// removeIfEmptyScript deletes a consumer only while it has no pending entry: deleting one with
// pending entries would make them unclaimable.
var removeIfEmptyScript = redis.NewScript(`
local p = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #p > 0 then return -1 end
return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
`)

// ConsumerReport says what tidyConsumers did.
type ConsumerReport struct {
	// Adopted is how many pending entries of earlier incarnations this consumer took over.
	Adopted int
	// Removed names the consumers removed from the group.
	Removed []string
}

// tidyConsumers adopts the pending entries of this gateway's earlier incarnations whose process
// is gone and removes their consumers, and removes any consumer idle beyond ConsumerGoneAfter
// with nothing pending (another gateway's entries are claimed by the flusher's Claim after
// ClaimMinIdle; the consumer goes at the next pass). New calls it; the keeper repeats the
// removal of idle consumers every ConsumerSweep.
func (o *Outbox) tidyConsumers(ctx context.Context, adopt bool) (ConsumerReport, error) {
	var rep ConsumerReport
	consumers, err := o.rdb.XInfoConsumers(ctx, o.cfg.Stream, o.cfg.Group).Result()
	if noGroup(err) {
		return rep, nil
	}
	if err != nil {
		return rep, fmt.Errorf("outbox: list consumers: %w", err)
	}
	for _, c := range consumers {
		if c.Name == o.cfg.Consumer {
			continue
		}
		pending := c.Pending
		if adopt && predecessorGone(o.self, c.Name, o.pidAlive, closedInProcess) {
			n, err := o.adopt(ctx, c.Name)
			rep.Adopted += n
			if err != nil {
				return rep, err
			}
			if n > 0 {
				o.log.Info("outbox: took over the pending entries of this gateway's previous run", "consumer", c.Name, "entries", n)
			}
			pending = 0
		} else if c.Idle < o.cfg.ConsumerGoneAfter {
			continue
		}
		if pending > 0 {
			continue
		}
		removed, err := removeIfEmptyScript.Run(ctx, o.rdb, []string{o.cfg.Stream}, o.cfg.Group, c.Name).Int64()
		if err != nil {
			return rep, fmt.Errorf("outbox: remove consumer %s: %w", c.Name, err)
		}
		if removed >= 0 {
			rep.Removed = append(rep.Removed, c.Name)
			o.log.Info("outbox: removed a consumer whose gateway is gone", "consumer", c.Name, "idle", c.Idle)
		}
	}
	return rep, nil
}

// adopt claims every pending entry of consumer into this one.
func (o *Outbox) adopt(ctx context.Context, consumer string) (int, error) {
	total := 0
	start := "-"
	for {
		pend, err := o.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
			Stream: o.cfg.Stream, Group: o.cfg.Group, Start: start, End: "+", Count: 500, Consumer: consumer,
		}).Result()
		if err != nil {
			return total, fmt.Errorf("outbox: list pending entries of %s: %w", consumer, err)
		}
		if len(pend) == 0 {
			return total, nil
		}
		ids := make([]string, len(pend))
		for i, p := range pend {
			ids[i] = p.ID
		}
		if err := o.rdb.XClaimJustID(ctx, &redis.XClaimArgs{
			Stream: o.cfg.Stream, Group: o.cfg.Group, Consumer: o.cfg.Consumer, MinIdle: 0, Messages: ids,
		}).Err(); err != nil && !errors.Is(err, redis.Nil) {
			return total, fmt.Errorf("outbox: take over %d entries of %s: %w", len(ids), consumer, err)
		}
		total += len(ids)
		// Continue after the last id (entries deleted from the stream may stay listed).
		next, ok := nextID(ids[len(ids)-1])
		if len(pend) < 500 || !ok {
			return total, nil
		}
		start = next
	}
}

// nextID returns the smallest stream id after id ("ms-seq").
func nextID(id string) (string, bool) {
	ms, seq, ok := strings.Cut(id, "-")
	if !ok {
		return "", false
	}
	n, err := strconv.ParseUint(seq, 10, 64)
	if err != nil {
		return "", false
	}
	return ms + "-" + strconv.FormatUint(n+1, 10), true
}
