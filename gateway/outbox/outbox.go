// Package outbox owns the gateway's durable outbox: a Redis stream every session event is appended
// to (with its per-session version, event id, time and priority) before the gateway counts it as
// accepted, read through one consumer group shared by all gateway replicas. Entries leave the stream
// only when they were delivered (Ack: XACK then XDEL) or moved to the dead-letter stream with a
// reason (DeadLetter); nothing trims pending entries. The outbox is bounded: when it holds Max
// undelivered entries, Append waits up to a deadline for room and then fails loudly with ErrFull;
// waiting appends share one poller, and room goes to sessions' final states first (room.go).
// Each process reads as its own consumer and takes over what its gone predecessors left pending
// (consumers.go); a marker in Redis tells when Redis lost its data, and the outbox with it
// (generation.go).
package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"wagate/gateway/event"
	"wagate/gateway/laravel"
)

// Defaults of Config.
const (
	DefaultStream           = "wagate:outbox"
	DefaultGroup            = "wagate-delivery"
	DefaultDeadLetterStream = "wagate:outbox:dead"
	DefaultMax              = 100_000
	DefaultAppendTimeout    = 5 * time.Second
	DefaultDeadLetterMax    = 100_000
	// DefaultRoomPoll is how often the one poller looks for room while appends wait (other
	// gateways free room without telling this one).
	DefaultRoomPoll = 25 * time.Millisecond
	// DefaultConsumerGoneAfter is how long a consumer with nothing pending may stay idle before
	// it is removed from the group (the batch flusher's default ClaimMinIdle).
	DefaultConsumerGoneAfter = 2*time.Minute + 20*time.Second
	DefaultConsumerSweep     = time.Minute
	DefaultMarkerCheck       = time.Second
)

// ErrFull matches (errors.Is) an Append that found the outbox full until its deadline.
var ErrFull = errors.New("outbox: full")

// Config configures an Outbox. Zero fields take the defaults above.
type Config struct {
	// Stream is the outbox stream key.
	Stream string
	// Group is the consumer group every gateway reads through.
	Group string
	// GatewayID names this gateway among the replicas sharing the Redis, the same across its
	// restarts (default the host name). Consumer names start with it.
	GatewayID string
	// Consumer is this process's consumer name (default unique per process incarnation,
	// "<GatewayID>/<host>/<pid>/<process start>/<n>"); New takes over what this gateway's earlier
	// incarnations left pending (see consumers.go), so reading its own pending entries recovers
	// it. Tests set a fixed name to play a restart.
	Consumer string
	// ConsumerGoneAfter is how long another consumer may stay idle with nothing pending before it
	// is removed from the group; set it to the flusher's ClaimMinIdle.
	ConsumerGoneAfter time.Duration
	// ConsumerSweep is how often the keeper (Start) removes such consumers.
	ConsumerSweep time.Duration
	// MarkerKey holds the generation of the Redis data (default Stream + ":generation").
	MarkerKey string
	// MarkerCheck is how often the keeper checks the marker (default 1 s).
	MarkerCheck time.Duration
	// PolicyCheck is how often the keeper reads Redis's maxmemory-policy, to notice one switched
	// at runtime to a policy that can evict the outbox (default 5 s; policy.go).
	PolicyCheck time.Duration
	// BatchesKey holds the records of the batches sent and not yet settled (default Stream +
	// ":batches"; batches.go).
	BatchesKey string
	// OnDataLost is called by the keeper with the new generation when the marker disappeared:
	// Redis lost its data, and with it the undelivered events.
	OnDataLost func(generation int64)
	// Redriving, when set, is told each customer's message or receipt a dead-letter re-drive is
	// about to append, before the append (the message journal records it again, so a Redis data
	// loss before Laravel applies it does not lose it); an error stops the re-drive there.
	Redriving func(ctx context.Context, ev event.Event) error
	// RoomPoll is how often the one poller looks for room while appends wait (default 25 ms,
	// jittered).
	RoomPoll time.Duration
	// DeadLetterStream receives entries that can never be delivered, each with its reason.
	DeadLetterStream string
	// Max bounds the undelivered entries (the stream length). Append waits when it is reached.
	Max int64
	// AppendTimeout bounds how long Append waits for room in a full outbox.
	AppendTimeout time.Duration
	// DeadLetterMax approximately bounds the dead-letter stream (oldest dead letters go first).
	DeadLetterMax int64
	// Shards, when positive, is the cluster's shard count: the outbox then keeps only the
	// entries of the shards this replica holds (SetHolds), reading through a group of its own
	// (Group + ":" + GatewayID), and adopts a shard's undelivered entries when it takes the
	// shard (shards.go). Zero: one gateway, every entry is this one's.
	Shards int
	// Journaled says that every customer's message and receipt appended here is kept in a
	// journal outside Redis that appends it again after each loss the keeper notices (batch
	// mode's message journal, gateway/app): an append of one that a noticed loss overtook while
	// it waited gives way to that replay (ErrOvertakenByLoss; once.go) instead of adding a
	// second entry of the item.
	Journaled bool
	// Logger receives the loud log lines (full outbox, dead letters) (default slog.Default()).
	Logger *slog.Logger
}

func (c *Config) fill() {
	if c.Stream == "" {
		c.Stream = DefaultStream
	}
	if c.Group == "" {
		c.Group = DefaultGroup
	}
	if c.GatewayID == "" {
		c.GatewayID = hostName()
	}
	if c.Consumer == "" {
		c.Consumer = newIncarnation(c.GatewayID).name()
	}
	if c.ConsumerGoneAfter <= 0 {
		c.ConsumerGoneAfter = DefaultConsumerGoneAfter
	}
	if c.ConsumerSweep <= 0 {
		c.ConsumerSweep = DefaultConsumerSweep
	}
	if c.MarkerKey == "" {
		c.MarkerKey = c.Stream + ":generation"
	}
	if c.MarkerCheck <= 0 {
		c.MarkerCheck = DefaultMarkerCheck
	}
	if c.PolicyCheck <= 0 {
		c.PolicyCheck = DefaultPolicyCheck
	}
	if c.BatchesKey == "" {
		c.BatchesKey = c.Stream + ":batches"
	}
	if c.RoomPoll <= 0 {
		c.RoomPoll = DefaultRoomPoll
	}
	if c.DeadLetterStream == "" {
		c.DeadLetterStream = DefaultDeadLetterStream
	}
	if c.Max <= 0 {
		c.Max = DefaultMax
	}
	if c.AppendTimeout <= 0 {
		c.AppendTimeout = DefaultAppendTimeout
	}
	if c.DeadLetterMax <= 0 {
		c.DeadLetterMax = DefaultDeadLetterMax
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Entry is one event read from the outbox.
type Entry struct {
	// ID is the stream entry id (what Ack and DeadLetter take).
	ID string
	// Event is the decoded event.
	Event event.Event
}

// DeadLetter is one entry of the dead-letter stream.
type DeadLetter struct {
	// ID is the dead-letter stream entry id.
	ID string `json:"id"`
	// OutboxID is the entry's id in the outbox it came from.
	OutboxID string `json:"outbox_id"`
	// Event is the event that could not be delivered (zero when the outbox entry was malformed).
	Event event.Event `json:"event"`
	// Reason says why it was given up.
	Reason string `json:"reason"`
	// At is when it was dead-lettered.
	At time.Time `json:"at"`
}

// Counters are the outbox's cumulative counts since start.
type Counters struct {
	Appended     int64 `json:"appended"`
	AppendWaited int64 `json:"append_waited"`
	AppendFailed int64 `json:"append_failed"`
	// RoomChecks counts the poller's looks at the stream length while appends waited.
	RoomChecks int64 `json:"room_checks"`
	// DataLost counts the times the marker was found gone (Redis lost its data).
	DataLost int64 `json:"data_lost"`
	Read     int64 `json:"read"`
	Claimed  int64 `json:"claimed"`
	// Adopted counts entries taken from the stream with a newly held shard (cluster mode).
	Adopted int64 `json:"adopted"`
	// Skipped counts entries read and left to the holder of their shard (cluster mode).
	Skipped      int64 `json:"skipped"`
	Acked        int64 `json:"acked"`
	DeadLettered int64 `json:"dead_lettered"`
}

// Stats is a point-in-time view of the outbox in Redis.
type Stats struct {
	// Length is the number of undelivered entries (read or not).
	Length int64 `json:"length"`
	// Pending is the number of entries read by some consumer and not yet acknowledged.
	Pending int64 `json:"pending"`
	// Capacity is the configured bound.
	Capacity int64 `json:"capacity"`
	// DeadLetters is the length of the dead-letter stream.
	DeadLetters int64 `json:"dead_letters"`
}

// Outbox is a durable, bounded event outbox on a Redis stream. It is safe for concurrent use.
type Outbox struct {
	rdb redis.UniversalClient
	cfg Config
	log *slog.Logger

	appended, appendWaited, appendFailed atomic.Int64
	read, claimed, acked, deadLettered   atomic.Int64
	adopted, skipped                     atomic.Int64

	// own is which shards' entries this outbox keeps (cluster mode, shards.go).
	own ownership

	// self is this consumer's parsed name (zero for a fixed name that is not an incarnation).
	self     incarnation
	pidAlive func(pid int) bool

	// Appends waiting for room (room.go).
	wmu        sync.Mutex
	waitq      roomQueue
	polling    bool
	roomChecks atomic.Int64

	// The Redis data generation (generation.go) and the keeper.
	genMu             sync.Mutex
	generation        atomic.Int64
	createdGeneration bool
	// runID is the run_id of the Redis server last seen ("" before the first check, or when the
	// server does not say, as the embedded miniredis does not): see restartedGeneration.
	runID string
	// run is runID's number (Run; 0 when runID is "").
	run atomic.Int64
	// lossHandled is when CheckGeneration last handled a loss (under genMu).
	lossHandled time.Time
	dataLost    atomic.Int64
	checkNow    chan struct{}
	keeperOnce  sync.Once
	stopKeeper  context.CancelFunc
	keeperDone  chan struct{}

	// The last maxmemory-policy the keeper read (policy.go).
	polMu        sync.Mutex
	pol          policyState
	policyUnsafe atomic.Bool

	// lastLen is the stream length seen by the latest append. While it is below half the bound,
	// appends skip the atomic bound check (a Lua script, costly on the embedded miniredis) and
	// check the length returned with the XADD instead (taking the entry back when over the
	// bound); near the bound every append is checked atomically.
	lastLen atomic.Int64
}

// appendScript appends only while the stream is below its bound, atomically.
var appendScript = redis.NewScript(`
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return false end
if ARGV[9] == '' then
  return redis.call('XADD', KEYS[1], '*', 'eid', ARGV[2], 'sid', ARGV[3], 'kind', ARGV[4], 'data', ARGV[5], 'ver', ARGV[6], 'prio', ARGV[7], 'ts', ARGV[8])
end
return redis.call('XADD', KEYS[1], '*', 'eid', ARGV[2], 'sid', ARGV[3], 'kind', ARGV[4], 'data', ARGV[5], 'ver', ARGV[6], 'prio', ARGV[7], 'ts', ARGV[8], 'item', ARGV[9])
`)

// New returns an Outbox on rdb: it reads (or creates) the Redis data marker, creates the stream
// and consumer group when missing, takes over the pending entries of this gateway's earlier
// incarnations whose process is gone and removes consumers of gone gateways. Start runs the
// keeper that watches the marker.
func New(ctx context.Context, rdb redis.UniversalClient, cfg Config) (*Outbox, error) {
	cfg.fill()
	if cfg.Shards > 0 {
		cfg.Group += ":" + cfg.GatewayID
	}
	o := &Outbox{rdb: rdb, cfg: cfg, log: cfg.Logger, pidAlive: processAlive, checkNow: make(chan struct{}, 1)}
	o.own.admitted, o.own.upTo = make([]bool, max(cfg.Shards, 0)), make([]streamID, max(cfg.Shards, 0))
	o.self, _ = parseIncarnation(cfg.Consumer)
	if o.self.gatewayID == "" {
		o.self = incarnation{gatewayID: cfg.GatewayID, host: hostName(), pid: os.Getpid(), start: processStart}
	}
	gen, created, err := o.readGeneration(ctx)
	if err != nil {
		return nil, err
	}
	// A stream gone under a marker this call did not create (evicted or deleted while no gateway
	// ran) is a loss: a fresh generation, which the caller finds it never recorded.
	if created {
		err = o.ensureGroup(ctx)
	} else if fresh, lost, rerr := o.restoreGroup(ctx, true); rerr != nil {
		err = rerr
	} else if lost {
		o.log.Error("outbox: the outbox stream is gone under an intact marker (evicted or deleted while no gateway ran): undelivered events are lost; starting a new generation",
			"stream", o.cfg.Stream, "marker", cfg.MarkerKey, "old_generation", gen, "generation", fresh)
		gen = fresh
	}
	if err != nil {
		return nil, err
	}
	o.generation.Store(gen)
	o.createdGeneration = created
	// The server's run from the start: a restart before the keeper's first check is noticed too.
	o.setRunID(o.serverRunID(ctx))
	if _, err := o.tidyConsumers(ctx, true); err != nil {
		return nil, err
	}
	return o, nil
}

// ensureGroup creates the stream and the consumer group when missing (first start, or a Redis
// that restarted without persistence); the group starts at the stream's beginning.
func (o *Outbox) ensureGroup(ctx context.Context) error {
	err := o.rdb.XGroupCreateMkStream(ctx, o.cfg.Stream, o.cfg.Group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("outbox: create group %s on %s: %w", o.cfg.Group, o.cfg.Stream, err)
	}
	return nil
}

// noGroup reports Redis's answer for a stream or group that does not exist (any more).
func noGroup(err error) bool { return err != nil && strings.HasPrefix(err.Error(), "NOGROUP") }

// Append stores ev durably and returns its stream id. When the outbox is full, or Redis does not
// answer (a restart, a failover), it waits up to AppendTimeout (or ctx) for room or for Redis;
// then it fails, counts it and logs it at ERROR; a full outbox gives an error matching ErrFull.
// An invalid event is refused at once. A customer's message or receipt the outbox took within
// OnceWindow is not appended again: Append answers the stream id it got (see onceKey).
func (o *Outbox) Append(ctx context.Context, ev event.Event) (string, error) {
	return o.appendEvent(ctx, ev, o.onceKey(ev))
}

// appendEvent is Append with the event's once key ("" for none: every call appends).
func (o *Outbox) appendEvent(ctx context.Context, ev event.Event, once string) (string, error) {
	if err := ev.Validate(); err != nil {
		return "", fmt.Errorf("outbox: %w", err)
	}
	item, err := encodeItem(ev)
	if err != nil {
		return "", err
	}
	args := []any{
		o.cfg.Max, ev.ID, ev.SessionID, string(ev.Kind), ev.Payload,
		strconv.FormatInt(ev.Version, 10), strconv.Itoa(int(ev.Priority)), strconv.FormatInt(ev.Time.UnixNano(), 10), item,
	}
	// The deadline bounds each Redis call too: a Redis that does not answer must not hold the
	// caller longer than AppendTimeout.
	actx, cancel := context.WithTimeout(ctx, o.cfg.AppendTimeout)
	defer cancel()
	waited, woken := false, false
	var lastErr error // the last attempt's Redis error, when it failed
	lastFull := false // whether the last attempt found the outbox full
	began := o.generation.Load()
	for {
		if !woken && !o.mayTryAtOnce(ev.Priority) {
			// Appends of its priority (or a higher one) wait for room: queue behind them
			// (room.go); they wait because the outbox is full.
			lastFull = true
			if !waited {
				waited = true
				o.appendWaited.Add(1)
			}
			room := o.waitForRoom(ev.Priority, false)
			select {
			case <-room:
				woken = true
				continue
			case <-actx.Done():
				o.stopWaiting(room)
				return "", o.refused(ev, lastErr, lastFull, ctx.Err())
			}
		}
		if o.overtakenByLoss(once, began) {
			return "", o.gaveWay(ev, began)
		}
		id, full, err := o.tryAppend(actx, args, once)
		if err == nil && !full {
			o.appended.Add(1)
			if lastErr != nil {
				o.checkSoon() // Redis answers again: did it come back empty?
			}
			return id, nil
		}
		if err != nil && actx.Err() != nil {
			// Our own deadline cut the call short: judge by the attempts that completed.
			return "", o.refused(ev, lastErr, lastFull, ctx.Err())
		}
		if err != nil && lastErr == nil {
			o.log.Warn("outbox: Redis did not take an event; retrying until the append deadline", "event_id", ev.ID, "err", err)
		}
		lastErr, lastFull = err, full
		if !waited {
			waited = true
			o.appendWaited.Add(1)
		}
		// Wait for the poller (or this gateway's acks) to see room; never poll Redis here. A
		// waiter woken before that lost the race queues again at the head of its priority.
		room := o.waitForRoom(ev.Priority, woken)
		select {
		case <-room:
			woken = true
		case <-actx.Done():
			o.stopWaiting(room)
			return "", o.refused(ev, lastErr, lastFull, ctx.Err())
		}
	}
}

// tryAppend appends once: far below the bound without the atomic check, near it with the script
// (full is true when the script found no room).
// An event with a once key (a customer's message or receipt) always goes through tryAppendOnce.
func (o *Outbox) tryAppend(ctx context.Context, args []any, once string) (id string, full bool, err error) {
	if once != "" {
		return o.tryAppendOnce(ctx, args, once)
	}
	if o.lastLen.Load() < o.cfg.Max/2 {
		var add *redis.StringCmd
		var n *redis.IntCmd
		_, err := o.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			values := []any{"eid", args[1], "sid", args[2], "kind", args[3], "data", args[4],
				"ver", args[5], "prio", args[6], "ts", args[7]}
			if args[8] != "" {
				values = append(values, "item", args[8])
			}
			add = p.XAdd(ctx, &redis.XAddArgs{Stream: o.cfg.Stream, Values: values})
			n = p.XLen(ctx, o.cfg.Stream)
			return nil
		})
		if err != nil {
			return "", false, err
		}
		if n.Val() > o.cfg.Max {
			// Others filled the outbox since this gateway last looked: take the entry back (a
			// consumer that read it meanwhile only delivers it early) and wait like a full append.
			if err := o.rdb.XDel(ctx, o.cfg.Stream, add.Val()).Err(); err != nil {
				return "", false, err
			}
			o.lastLen.Store(n.Val() - 1)
			return "", true, nil
		}
		o.lastLen.Store(n.Val())
		return add.Val(), false, nil
	}
	id, err = appendScript.Run(ctx, o.rdb, []string{o.cfg.Stream}, args...).Text()
	if errors.Is(err, redis.Nil) {
		return "", true, nil
	}
	if err != nil {
		return "", false, err
	}
	o.lastLen.Add(1)
	return id, false, nil
}

// refused counts and logs an event Append gives up on, and builds its error: ErrFull when the
// last completed attempt found the outbox full, else the Redis error (or Redis's silence). An
// append its caller withdrew (ctx canceled: e.g. the session superseded a QR code waiting for
// room) is not counted as a refusal and logged at DEBUG only; its error matches context.Canceled
// (and ErrFull when it was waiting for room).
func (o *Outbox) refused(ev event.Event, redisErr error, full bool, ctxErr error) error {
	withdrawn := errors.Is(ctxErr, context.Canceled)
	if !withdrawn {
		o.appendFailed.Add(1)
	}
	attrs := []any{"event_id", ev.ID, "session_id", ev.SessionID, "kind", ev.Kind, "version", ev.Version, "waited", o.cfg.AppendTimeout}
	logError := o.log.Error
	if withdrawn {
		logError = o.log.Debug
	}
	var err error
	switch {
	case full:
		logError("outbox full: event NOT accepted", append(attrs, "max", o.cfg.Max)...)
		err = fmt.Errorf("outbox: event %s not accepted: %w (max %d)", ev.ID, ErrFull, o.cfg.Max)
	case redisErr != nil:
		logError("outbox: Redis unavailable: event NOT accepted", append(attrs, "err", redisErr)...)
		err = fmt.Errorf("outbox: event %s not accepted: %w", ev.ID, redisErr)
	default:
		logError("outbox: Redis did not answer: event NOT accepted", attrs...)
		err = fmt.Errorf("outbox: event %s not accepted: Redis did not answer within %s: %w", ev.ID, o.cfg.AppendTimeout, context.DeadlineExceeded)
	}
	if ctxErr != nil {
		err = fmt.Errorf("%w (caller gave up: %w)", err, ctxErr)
	}
	return err
}

// noteRemoved lowers the remembered stream length after this gateway removed n entries, and
// wakes up to n appends waiting for room.
func (o *Outbox) noteRemoved(n int) {
	for {
		cur := o.lastLen.Load()
		if o.lastLen.CompareAndSwap(cur, max(0, cur-int64(n))) {
			break
		}
	}
	o.wake(int64(n))
}

// ReadNew reads up to count entries never delivered to any consumer of the group, without
// blocking. Read entries stay pending for this consumer until acknowledged or dead-lettered.
func (o *Outbox) ReadNew(ctx context.Context, count int64) ([]Entry, error) {
	return o.readGroup(ctx, ">", count)
}

// ReadOwnPending reads up to count of this consumer's pending entries with ids after `after`
// ("0" for the first page): what a previous run of this gateway read and never acknowledged.
func (o *Outbox) ReadOwnPending(ctx context.Context, after string, count int64) ([]Entry, error) {
	if after == "" {
		after = "0"
	}
	return o.readGroup(ctx, after, count)
}

func (o *Outbox) readGroup(ctx context.Context, from string, count int64) ([]Entry, error) {
	args := &redis.XReadGroupArgs{
		Group: o.cfg.Group, Consumer: o.cfg.Consumer, Streams: []string{o.cfg.Stream, from},
		Count: count, Block: -1,
	}
	sent := time.Now()
	res, err := o.rdb.XReadGroup(ctx, args).Result()
	if noGroup(err) {
		if gerr := o.groupVanished(ctx, sent); gerr != nil {
			return nil, gerr
		}
		res, err = o.rdb.XReadGroup(ctx, args).Result()
	}
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("outbox: read (%s): %w", from, err)
	}
	var msgs []redis.XMessage
	for _, s := range res {
		msgs = append(msgs, s.Messages...)
	}
	if from != ">" && count > 0 && int64(len(msgs)) > count {
		// Some servers (miniredis) ignore COUNT on history reads; the rest stays pending.
		msgs = msgs[:count]
	}
	entries, err := o.decodeAll(ctx, o.keepHeld(ctx, msgs))
	o.read.Add(int64(len(entries)))
	return entries, err
}

// Claim takes over up to count entries that other consumers read and left idle for at least
// minIdle (dead gateways), scanning from start ("0-0" first); it returns the claimed entries and
// the cursor for the next call ("0-0" when the scan is complete).
func (o *Outbox) Claim(ctx context.Context, minIdle time.Duration, start string, count int64) ([]Entry, string, error) {
	if start == "" {
		start = "0-0"
	}
	sent := time.Now()
	msgs, next, err := o.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream: o.cfg.Stream, Group: o.cfg.Group, Consumer: o.cfg.Consumer,
		MinIdle: minIdle, Start: start, Count: count,
	}).Result()
	if noGroup(err) {
		return nil, "0-0", o.groupVanished(ctx, sent)
	}
	if err != nil {
		return nil, start, fmt.Errorf("outbox: claim: %w", err)
	}
	entries, err := o.decodeAll(ctx, o.keepHeld(ctx, msgs))
	o.claimed.Add(int64(len(entries)))
	return entries, next, err
}

// Touch resets the idle time of entries this consumer still works on, so other gateways do not
// claim them while a long retry is under way.
func (o *Outbox) Touch(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	sent := time.Now()
	err := o.rdb.XClaimJustID(ctx, &redis.XClaimArgs{
		Stream: o.cfg.Stream, Group: o.cfg.Group, Consumer: o.cfg.Consumer, MinIdle: 0, Messages: ids,
	}).Err()
	if noGroup(err) {
		// The entries this gateway holds are gone with the stream: a loss (groupVanished).
		return o.groupVanished(ctx, sent)
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("outbox: touch %d entries: %w", len(ids), err)
	}
	return nil
}

// decodeAll decodes messages; entries that were deleted under a pending id (no fields) are
// acknowledged away, malformed ones dead-lettered.
func (o *Outbox) decodeAll(ctx context.Context, msgs []redis.XMessage) ([]Entry, error) {
	entries := make([]Entry, 0, len(msgs))
	var gone []string
	for _, m := range msgs {
		if len(m.Values) == 0 {
			gone = append(gone, m.ID)
			continue
		}
		ev, err := decode(m.Values)
		if err != nil {
			if dlErr := o.deadLetterRaw(ctx, m.ID, m.Values, "malformed outbox entry: "+err.Error()); dlErr != nil {
				return entries, dlErr
			}
			continue
		}
		entries = append(entries, Entry{ID: m.ID, Event: ev})
	}
	if len(gone) > 0 {
		if err := o.rdb.XAck(ctx, o.cfg.Stream, o.cfg.Group, gone...).Err(); err != nil {
			return entries, fmt.Errorf("outbox: ack deleted entries: %w", err)
		}
	}
	return entries, nil
}

func decode(v map[string]any) (event.Event, error) {
	str := func(k string) string { s, _ := v[k].(string); return s }
	ver, err := strconv.ParseInt(str("ver"), 10, 64)
	if err != nil {
		return event.Event{}, fmt.Errorf("version: %w", err)
	}
	prio, err := strconv.Atoi(str("prio"))
	if err != nil {
		return event.Event{}, fmt.Errorf("priority: %w", err)
	}
	ts, err := strconv.ParseInt(str("ts"), 10, 64)
	if err != nil {
		return event.Event{}, fmt.Errorf("time: %w", err)
	}
	ev := event.Event{
		ID: str("eid"), SessionID: str("sid"), Kind: event.Kind(str("kind")), Payload: str("data"),
		Version: ver, Priority: event.Priority(prio), Time: time.Unix(0, ts).UTC(),
	}
	if err := decodeItem(&ev, str("item")); err != nil {
		return event.Event{}, err
	}
	if err := ev.Validate(); err != nil {
		return event.Event{}, err
	}
	return ev, nil
}

// encodeItem returns the JSON of a message or receipt event's Laravel item, stored in the entry's
// "item" field; "" for QR codes and statuses, whose payload says everything.
func encodeItem(ev event.Event) (string, error) {
	var item any
	switch ev.Kind {
	case event.KindMessage:
		item = ev.Message
	case event.KindReceipt:
		item = ev.Receipt
	default:
		return "", nil
	}
	b, err := json.Marshal(item)
	if err != nil {
		return "", fmt.Errorf("outbox: encode the item of event %s: %w", ev.ID, err)
	}
	return string(b), nil
}

// decodeItem restores a message or receipt event's item from the entry's "item" field.
func decodeItem(ev *event.Event, raw string) error {
	switch ev.Kind {
	case event.KindMessage:
		ev.Message = new(laravel.MessageItem)
		if err := json.Unmarshal([]byte(raw), ev.Message); err != nil {
			return fmt.Errorf("message item: %w", err)
		}
	case event.KindReceipt:
		ev.Receipt = new(laravel.ReceiptItem)
		if err := json.Unmarshal([]byte(raw), ev.Receipt); err != nil {
			return fmt.Errorf("receipt item: %w", err)
		}
	}
	return nil
}

// Ack removes delivered entries: XACK then XDEL, in one transaction.
func (o *Outbox) Ack(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := o.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.XAck(ctx, o.cfg.Stream, o.cfg.Group, ids...)
		p.XDel(ctx, o.cfg.Stream, ids...)
		return nil
	})
	if err != nil {
		return fmt.Errorf("outbox: ack %d entries: %w", len(ids), err)
	}
	o.acked.Add(int64(len(ids)))
	o.noteRemoved(len(ids))
	return nil
}

// DeadLetter moves entries to the dead-letter stream with reason, and removes them from the
// outbox, in one transaction. It logs each one.
func (o *Outbox) DeadLetter(ctx context.Context, entries []Entry, reason string) error {
	if len(entries) == 0 {
		return nil
	}
	now := strconv.FormatInt(time.Now().UnixNano(), 10)
	ids := make([]string, len(entries))
	values := make([][]any, len(entries))
	for i, e := range entries {
		ev := e.Event
		values[i] = []any{"oid", e.ID, "eid", ev.ID, "sid", ev.SessionID, "kind", string(ev.Kind), "data", ev.Payload,
			"ver", strconv.FormatInt(ev.Version, 10), "prio", strconv.Itoa(int(ev.Priority)),
			"ts", strconv.FormatInt(ev.Time.UnixNano(), 10), "reason", reason, "at", now}
		item, err := encodeItem(ev)
		if err != nil {
			return err
		}
		if item != "" {
			values[i] = append(values[i], "item", item)
		}
	}
	_, err := o.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for i, e := range entries {
			ids[i] = e.ID
			p.XAdd(ctx, &redis.XAddArgs{Stream: o.cfg.DeadLetterStream, MaxLen: o.cfg.DeadLetterMax, Approx: true, Values: values[i]})
		}
		p.XAck(ctx, o.cfg.Stream, o.cfg.Group, ids...)
		p.XDel(ctx, o.cfg.Stream, ids...)
		return nil
	})
	if err != nil {
		return fmt.Errorf("outbox: dead-letter %d entries: %w", len(entries), err)
	}
	o.deadLettered.Add(int64(len(entries)))
	o.noteRemoved(len(entries))
	for _, e := range entries {
		o.log.Error("event dead-lettered: it will not be delivered", "event_id", e.Event.ID, "session_id", e.Event.SessionID,
			"kind", e.Event.Kind, "version", e.Event.Version, "reason", reason)
	}
	return nil
}

func (o *Outbox) deadLetterRaw(ctx context.Context, id string, values map[string]any, reason string) error {
	vals := []any{"oid", id, "reason", reason, "at", strconv.FormatInt(time.Now().UnixNano(), 10)}
	for k, v := range values {
		vals = append(vals, "raw_"+k, v)
	}
	_, err := o.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.XAdd(ctx, &redis.XAddArgs{Stream: o.cfg.DeadLetterStream, MaxLen: o.cfg.DeadLetterMax, Approx: true, Values: vals})
		p.XAck(ctx, o.cfg.Stream, o.cfg.Group, id)
		p.XDel(ctx, o.cfg.Stream, id)
		return nil
	})
	if err != nil {
		return fmt.Errorf("outbox: dead-letter malformed entry %s: %w", id, err)
	}
	o.deadLettered.Add(1)
	o.log.Error("malformed outbox entry dead-lettered", "outbox_id", id, "reason", reason)
	return nil
}

// DeadLetters returns up to count dead letters, newest first (the admin view).
func (o *Outbox) DeadLetters(ctx context.Context, count int64) ([]DeadLetter, error) {
	msgs, err := o.rdb.XRevRangeN(ctx, o.cfg.DeadLetterStream, "+", "-", count).Result()
	if err != nil {
		return nil, fmt.Errorf("outbox: read dead letters: %w", err)
	}
	out := make([]DeadLetter, 0, len(msgs))
	for _, m := range msgs {
		str := func(k string) string { s, _ := m.Values[k].(string); return s }
		dl := DeadLetter{ID: m.ID, OutboxID: str("oid"), Reason: str("reason")}
		if at, err := strconv.ParseInt(str("at"), 10, 64); err == nil {
			dl.At = time.Unix(0, at).UTC()
		}
		if ev, err := decode(m.Values); err == nil {
			dl.Event = ev
		}
		out = append(out, dl)
	}
	return out, nil
}

// Stats reads the outbox's length, pending count and dead-letter length from Redis.
func (o *Outbox) Stats(ctx context.Context) (Stats, error) {
	var lenCmd, dlCmd *redis.IntCmd
	var pendCmd *redis.XPendingCmd
	_, err := o.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		lenCmd = p.XLen(ctx, o.cfg.Stream)
		pendCmd = p.XPending(ctx, o.cfg.Stream, o.cfg.Group)
		dlCmd = p.XLen(ctx, o.cfg.DeadLetterStream)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return Stats{Capacity: o.cfg.Max}, fmt.Errorf("outbox: stats: %w", err)
	}
	st := Stats{Length: lenCmd.Val(), Capacity: o.cfg.Max, DeadLetters: dlCmd.Val()}
	if p := pendCmd.Val(); p != nil {
		st.Pending = p.Count
	}
	return st, nil
}

// Counters returns the cumulative counts since New.
func (o *Outbox) Counters() Counters {
	return Counters{
		Appended: o.appended.Load(), AppendWaited: o.appendWaited.Load(), AppendFailed: o.appendFailed.Load(),
		RoomChecks: o.roomChecks.Load(), DataLost: o.dataLost.Load(),
		Read: o.read.Load(), Claimed: o.claimed.Load(), Adopted: o.adopted.Load(), Skipped: o.skipped.Load(), Acked: o.acked.Load(), DeadLettered: o.deadLettered.Load(),
	}
}
