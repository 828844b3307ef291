package batch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"wagate/gateway/delivery"
	"wagate/gateway/delivery/retrybudget"
	"wagate/gateway/event"
	"wagate/gateway/internal/configcheck"
	"wagate/gateway/laravel"
	"wagate/gateway/outbox"
)

// Sender posts batches to Laravel; *laravel.Client implements it.
type Sender interface {
	PostQRBatch(ctx context.Context, idempotencyKey string, b laravel.QRBatch) (laravel.BatchResult, error)
	PostStatusBatch(ctx context.Context, idempotencyKey string, b laravel.StatusBatch) (laravel.BatchResult, error)
	PostMessageBatch(ctx context.Context, idempotencyKey string, b laravel.MessageBatch) (laravel.BatchResult, error)
	PostReceiptBatch(ctx context.Context, idempotencyKey string, b laravel.ReceiptBatch) (laravel.BatchResult, error)
}

// Clock tells the flusher the time; tests pass a fake one and drive Poll by hand.
type Clock interface {
	Now() time.Time
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// Defaults of Config.
const (
	DefaultBatchSize        = 50
	DefaultBatchInterval    = 5 * time.Second
	DefaultPriorityInterval = 1 * time.Second
	// DefaultMessageInterval is the longest a message or receipt waits for its batch: a chat
	// cannot wait BatchInterval.
	DefaultMessageInterval = 1 * time.Second
	DefaultDeliveryTimeout = 2 * time.Minute
	DefaultPollInterval    = 100 * time.Millisecond
	DefaultMaxInFlight     = 4
	DefaultMaxBuffered     = 5000
	DefaultClaimInterval   = 30 * time.Second
	// DefaultPoisonHorizon is how long a 5xx must persist for one batch, while others are
	// delivered, before it is split to isolate a poison item (and before that item, failing alone,
	// is dead-lettered).
	DefaultPoisonHorizon = 5 * time.Minute
	// DefaultMaxRetryAfter caps a Retry-After: the longest every send to Laravel is paused.
	DefaultMaxRetryAfter = 5 * time.Minute
	// poisonAloneFailures is how many 5xx in a row an item must get alone, past the poison
	// horizon, before it is dead-lettered.
	poisonAloneFailures = 3
)

// Config configures batch delivery. Zero fields take the defaults.
type Config struct {
	// BatchSize is the most items a batch carries; reaching it flushes (default 50).
	BatchSize int
	// BatchInterval is the longest an item waits before a time flush (default 5 s).
	BatchInterval time.Duration
	// PriorityInterval bounds how long a HIGH event waits (default 1 s). The flusher lingers a
	// twentieth of it (50 ms by default) so HIGH events of many sessions share one batch, and a
	// priority flush comes no sooner than half of it after the previous flush of QR codes and
	// statuses (PriorityDue), so a burst of HIGH events costs Laravel at most two priority flushes
	// per PriorityInterval; a HIGH event waits at most half of it.
	PriorityInterval time.Duration
	// MessageInterval is the longest a message or receipt waits before a time flush of the
	// messages and receipts (default 1 s); QR codes and statuses keep BatchInterval.
	MessageInterval time.Duration
	// DeliveryTimeout bounds the retries of one batch; past it the batch's items go back to the
	// waiting items (still pending in the outbox) and are re-batched. Nothing is dropped.
	DeliveryTimeout time.Duration
	// PollInterval is how often the flusher looks for entries appended by other gateways; with
	// nothing to do it waits longer, up to ten poll intervals (idle.go).
	PollInterval time.Duration
	// MaxInFlight bounds the batches sent concurrently (default 4).
	MaxInFlight int
	// MaxBuffered bounds the outbox entries the flusher holds (read and not yet acknowledged:
	// waiting, in flight, or delivered with the acknowledgement still owed); at it the flusher
	// stops reading the outbox (default 5000). Superseded entries are acknowledged as soon as
	// they are coalesced, so each held entry is one item.
	MaxBuffered int
	// ClaimMinIdle is how long another consumer's entry must be idle before this gateway claims it
	// (default 2 x HTTP timeout + DeliveryTimeout = 2 min 20 s).
	ClaimMinIdle time.Duration
	// ClaimInterval is how often the flusher looks for dead consumers' entries (default 30 s).
	ClaimInterval time.Duration
	// Backoff is the retry policy (default DefaultBackoff).
	Backoff Backoff
	// Breaker configures the circuit breaker.
	Breaker BreakerConfig
	// PoisonHorizon is how long a 5xx must persist for one batch while other batches are
	// delivered before the batch is split to find a poison item; only an item that keeps failing
	// alone past it is dead-lettered (default 5 min).
	PoisonHorizon time.Duration
	// MaxRetryAfter caps a Retry-After, which pauses every send to Laravel (default 5 min).
	MaxRetryAfter time.Duration
	// RetryBudget bounds the load retries add to Laravel: at most RetryBudget.Percent percent of
	// the first attempts plus RetryBudget.MinPerSecond per second (burst RetryBudget.Burst). A
	// retry the budget refuses waits (its batch stays in flight, tried again later), never
	// dropped. The shutdown's final attempt is not budgeted.
	RetryBudget retrybudget.Config
}

// DefaultConfig returns batch delivery's defaults, the values zero fields take (the Default*
// constants; ClaimMinIdle is 2 x Laravel's default HTTP timeout + DeliveryTimeout).
func DefaultConfig() Config {
	return Config{
		BatchSize:        DefaultBatchSize,
		BatchInterval:    DefaultBatchInterval,
		PriorityInterval: DefaultPriorityInterval,
		MessageInterval:  DefaultMessageInterval,
		DeliveryTimeout:  DefaultDeliveryTimeout,
		PollInterval:     DefaultPollInterval,
		MaxInFlight:      DefaultMaxInFlight,
		MaxBuffered:      DefaultMaxBuffered,
		ClaimMinIdle:     2*laravel.DefaultTimeout + DefaultDeliveryTimeout,
		ClaimInterval:    DefaultClaimInterval,
		Backoff:          DefaultBackoff,
		Breaker:          BreakerConfig{Failures: DefaultBreakerFailures, OpenFor: DefaultBreakerOpenFor},
		PoisonHorizon:    DefaultPoisonHorizon,
		MaxRetryAfter:    DefaultMaxRetryAfter,
		RetryBudget:      retrybudget.DefaultConfig(),
	}
}

// Validate reports a configuration that cannot work: negative sizes or durations, a batch above
// the contract's limit. Zero fields are fine (they take the defaults).
func (c Config) Validate() error {
	errs := []error{
		configcheck.NotNegative("batch", "BatchSize", c.BatchSize),
		configcheck.NotNegative("batch", "MaxInFlight", c.MaxInFlight),
		configcheck.NotNegative("batch", "MaxBuffered", c.MaxBuffered),
		configcheck.NotNegative("batch", "BatchInterval", c.BatchInterval),
		configcheck.NotNegative("batch", "PriorityInterval", c.PriorityInterval),
		configcheck.NotNegative("batch", "MessageInterval", c.MessageInterval),
		configcheck.NotNegative("batch", "DeliveryTimeout", c.DeliveryTimeout),
		configcheck.NotNegative("batch", "PollInterval", c.PollInterval),
		configcheck.NotNegative("batch", "ClaimMinIdle", c.ClaimMinIdle),
		configcheck.NotNegative("batch", "ClaimInterval", c.ClaimInterval),
		configcheck.NotNegative("batch", "PoisonHorizon", c.PoisonHorizon),
		configcheck.NotNegative("batch", "MaxRetryAfter", c.MaxRetryAfter),
		configcheck.NotNegative("batch", "Breaker.OpenFor", c.Breaker.OpenFor),
		c.RetryBudget.Validate(),
	}
	if c.BatchSize > laravel.MaxBatchItems {
		errs = append(errs, &configcheck.Error{Component: "batch", Setting: "BatchSize", Value: c.BatchSize,
			Max: fmt.Sprintf("the contract's %d items", laravel.MaxBatchItems)})
	}
	return errors.Join(errs...)
}

func (c *Config) fill() {
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	c.BatchSize = min(c.BatchSize, laravel.MaxBatchItems)
	if c.BatchInterval <= 0 {
		c.BatchInterval = DefaultBatchInterval
	}
	if c.PriorityInterval <= 0 {
		c.PriorityInterval = DefaultPriorityInterval
	}
	if c.MessageInterval <= 0 {
		c.MessageInterval = DefaultMessageInterval
	}
	if c.DeliveryTimeout <= 0 {
		c.DeliveryTimeout = DefaultDeliveryTimeout
	}
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.MaxBuffered <= 0 {
		c.MaxBuffered = DefaultMaxBuffered
	}
	if c.ClaimMinIdle <= 0 {
		c.ClaimMinIdle = 2*laravel.DefaultTimeout + c.DeliveryTimeout
	}
	if c.ClaimInterval <= 0 {
		c.ClaimInterval = DefaultClaimInterval
	}
	if c.Backoff.Initial <= 0 {
		c.Backoff = DefaultBackoff
	}
	if c.PoisonHorizon <= 0 {
		c.PoisonHorizon = DefaultPoisonHorizon
	}
	if c.MaxRetryAfter <= 0 {
		c.MaxRetryAfter = DefaultMaxRetryAfter
	}
	c.RetryBudget = c.RetryBudget.Filled()
}

// policy returns the delivery policy the configuration gives.
func (c Config) policy() Policy {
	return Policy{
		Backoff: c.Backoff, DeliveryTimeout: c.DeliveryTimeout, PoisonHorizon: c.PoisonHorizon,
		MinAloneFailures: poisonAloneFailures, MaxRetryAfter: c.MaxRetryAfter,
	}
}

// Options are what New needs.
type Options struct {
	Outbox *outbox.Outbox
	Sender Sender
	Config Config
	// Clock defaults to the wall clock.
	Clock Clock
	// Jitter returns numbers in [0,1) for the backoff; default math/rand/v2.
	Jitter func() float64
	Logger *slog.Logger
	// Delivered, when set, is told about every event Laravel acknowledged (the metrics of
	// messages and receipts delivered and their delay).
	Delivered func(ev *event.Event)
	// BatchSent, when set, is told the kind and item count of every batch Laravel acknowledged
	// (the batch size metric).
	BatchSent func(kind event.Kind, items int)
	// Settled, when set, is told the events of each batch whose fate is final, with that fate:
	// applied by Laravel (acknowledged) or dead-lettered, once per batch and fate, before they
	// leave the flusher; never those retried, requeued or left pending. The message journal
	// marks the rows of applied items settled and deletes those of dead-lettered ones here.
	Settled func(ctx context.Context, evs []event.Event, fate Settlement)
	// Noting, when set, is told the composition of every batch of messages or receipts before its
	// first send, before its record in Redis; an error holds those batches back until the next
	// step (resend.go: the message journal notes them, so a batch Redis lost the record of is sent
	// again under its key).
	Noting func(ctx context.Context, batches []Composition) error
	// Noted, when set, returns the batches Noting was told of whose items are not settled yet
	// (the message journal's): a start re-forms those whose entries it takes over while Redis
	// holds no record of them (resend.go, resumeNoted), or with Journaled set, any entry taken in
	// whose item the journal noted in such a batch (intake.go, reform).
	Noted func(ctx context.Context) ([]Composition, error)
	// Journaled, when set, tells for each event of the messages and receipts taken in (read,
	// recovered, claimed, adopted) what the message journal knows of its item, in order: an
	// applied item's entry is acknowledged away, an item noted in a batch goes out only in it
	// (intake.go).
	Journaled func(ctx context.Context, evs []event.Event) ([]JournalState, error)
}

// Settlement is the final fate of items Options.Settled is told of.
type Settlement int

const (
	// SettledApplied: Laravel applied them (a 2xx accounted for each).
	SettledApplied Settlement = iota
	// SettledDeadLettered: Laravel refused them by name; they are in the dead-letter stream.
	SettledDeadLettered
)

// Delivery is the batch delivery mode: Deliver appends to the outbox; a flusher (Start) reads,
// coalesces, sends, retries and acknowledges. Poll runs one step of the flusher by hand (tests).
type Delivery struct {
	ob      *outbox.Outbox
	send    Sender
	cfg     Config
	clock   Clock
	jitter  func() float64
	log     *slog.Logger
	breaker *Breaker
	policy  Policy
	// budget bounds the retries (Config.RetryBudget).
	budget *retrybudget.Budget
	// onDelivered is Options.Delivered.
	onDelivered func(ev *event.Event)
	// onBatchSent is Options.BatchSent.
	onBatchSent func(kind event.Kind, items int)
	// onSettled is Options.Settled.
	onSettled func(ctx context.Context, evs []event.Event, fate Settlement)
	// onNoting is Options.Noting.
	onNoting func(ctx context.Context, batches []Composition) error
	// onNoted is Options.Noted.
	onNoted func(ctx context.Context) ([]Composition, error)
	// onJournaled is Options.Journaled.
	onJournaled func(ctx context.Context, evs []event.Event) ([]JournalState, error)

	wake          chan struct{}
	sinceLastPoll atomic.Int64
	// idling: the flusher waits longer than PollInterval, having nothing to do (idle.go);
	// idleSteps counts its idle steps in a row (the flusher's goroutine only).
	idling    atomic.Bool
	idleSteps int

	// Owned by the flusher (Poll); mu guards them for the metrics reader.
	mu          sync.Mutex
	co          *Coalescer
	inflight    []*Batch
	unacked     []string // delivered or superseded, not yet acknowledged (Redis was down)
	failures    map[string]int64
	lastOK      time.Time // the last 2xx that acknowledged items
	nextClaim   time.Time
	claimCursor string
	lastFlush   time.Time
	started     time.Time

	sent, batchesSent, failed, retried, expired, deadLettered, itemErrors atomic.Int64
	// firstAttempts counts the batches' first sends (retried the later ones), both when the send
	// goes to Laravel; retriesHeld the retries the budget refused (each tried again later).
	firstAttempts, retriesHeld atomic.Int64
	splits                     atomic.Int64
	enqueueFailed              atomic.Int64
	flushes                    [4]atomic.Int64
	// appliedDropped counts entries taken in whose items Laravel had applied (or a batch in
	// flight here carried), acknowledged away instead of sent (intake.go).
	appliedDropped atomic.Int64
	// overtakenByLoss counts the appends of customers' messages and receipts that gave way to
	// the message journal's replay (outbox.ErrOvertakenByLoss): accepted, the replay appends them.
	overtakenByLoss atomic.Int64

	pollMu  sync.Mutex // one Poll at a time
	cancel  context.CancelFunc
	done    chan struct{}
	closing atomic.Bool

	// unackedBatches are keys of settled batches whose records are still to be removed (guarded
	// by mu, like unacked).
	unackedBatches []string
	// checkPending asks the next step to compare this consumer's pending entries in Redis with
	// those it holds (resume.go); owned by the flusher (pollMu).
	checkPending bool
	// resent are the entries of batches Resend put in flight that no read met yet (pollMu).
	resent map[string]bool
}

var _ delivery.Delivery = (*Delivery)(nil)

// New returns a Delivery on the given outbox; call Start to run its flusher.
func New(opts Options) (*Delivery, error) {
	if opts.Outbox == nil || opts.Sender == nil {
		return nil, errors.New("batch: New needs an outbox and a sender")
	}
	cfg := opts.Config
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.fill()
	d := &Delivery{
		ob: opts.Outbox, send: opts.Sender, cfg: cfg, clock: opts.Clock, jitter: opts.Jitter, log: opts.Logger, onDelivered: opts.Delivered, onBatchSent: opts.BatchSent,
		onSettled: opts.Settled, onNoting: opts.Noting, onNoted: opts.Noted, onJournaled: opts.Journaled,
		wake: make(chan struct{}, 1), policy: cfg.policy(), failures: map[string]int64{},
	}
	if d.clock == nil {
		d.clock = wallClock{}
	}
	if d.jitter == nil {
		d.jitter = randomJitter
	}
	if d.log == nil {
		d.log = slog.Default()
	}
	d.breaker = NewBreaker(cfg.Breaker, d.log)
	d.breaker.now = d.clock.Now
	d.co = NewCoalescer(cfg.BatchSize, cfg.BatchInterval, cfg.PriorityInterval/20)
	d.co.SetPrioritySpacing(cfg.PriorityInterval / 2)
	d.co.SetMessageInterval(cfg.MessageInterval)
	d.started = d.clock.Now()
	d.budget = retrybudget.New(cfg.RetryBudget, d.started)
	d.lastFlush = d.started
	d.nextClaim = d.started
	return d, nil
}

// Accepts reports that batch delivery delivers every kind: QR codes and statuses coalesced per
// session, messages and receipts each one, in sequence order per session.
func (d *Delivery) Accepts(event.Kind) bool { return true }

// DeliversDurably reports that Deliver returns nil only once the event is in the Redis outbox.
func (d *Delivery) DeliversDurably() bool { return true }

var (
	_ delivery.KindAccepter     = (*Delivery)(nil)
	_ delivery.DurableDeliverer = (*Delivery)(nil)
)

// Deliver appends ev durably to the outbox; nil means accepted. A full outbox (or a Redis that does
// not answer) makes it wait up to the outbox's AppendTimeout and then fail (an error matching
// outbox.ErrFull when full); every refusal is counted (enqueue_failed) and logged.
func (d *Delivery) Deliver(ctx context.Context, ev event.Event) error {
	if _, err := d.ob.Append(ctx, ev); err != nil {
		if errors.Is(err, outbox.ErrOvertakenByLoss) {
			d.overtakenByLoss.Add(1)
			return nil // accepted: the message journal's replay of that loss appends it
		}
		if !errors.Is(err, context.Canceled) { // withdrawn by the caller (a superseded QR code): not refused
			d.enqueueFailed.Add(1) // full outbox, Redis unavailable, or an invalid event
		}
		return fmt.Errorf("batch deliver: %w", err)
	}
	n := d.sinceLastPoll.Add(1)
	if ev.Priority == event.PriorityHigh || n >= int64(d.cfg.BatchSize) || (n == 1 && d.idling.Load()) {
		d.poke()
	}
	return nil
}

func (d *Delivery) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Recover re-reads this gateway's own pending entries (what a previous run read and did not
// acknowledge): the recorded batches they belong to are sent first under their keys (resume.go),
// the rest join the waiting items. Start calls it; tests may call it before Poll.
func (d *Delivery) Recover(ctx context.Context) (int, error) {
	d.pollMu.Lock()
	defer d.pollMu.Unlock()
	total := 0
	after := "0"
	var all []outbox.Entry
	for {
		entries, err := d.ob.ReadOwnPending(ctx, after, 500)
		if err != nil {
			return total, err
		}
		if len(entries) == 0 {
			break
		}
		all = append(all, entries...)
		total += len(entries)
		after = entries[len(entries)-1].ID
	}
	now := d.clock.Now()
	d.hold(ctx, d.takeIn(ctx, all, now, true), now)
	if total > 0 {
		d.log.Info("batch: recovered own pending outbox entries from a previous run", "entries", total)
	}
	return total, nil
}

// Start recovers own pending entries and runs the flusher until Close.
func (d *Delivery) Start(ctx context.Context) error {
	if _, err := d.Recover(ctx); err != nil {
		return fmt.Errorf("batch: recover pending entries: %w", err)
	}
	ctx, d.cancel = context.WithCancel(context.WithoutCancel(ctx))
	d.done = make(chan struct{})
	go d.run(ctx)
	return nil
}

func (d *Delivery) run(ctx context.Context) {
	defer close(d.done)
	errWait := d.cfg.PollInterval
	for {
		wait := d.cfg.PollInterval
		if err := d.Poll(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			d.log.Warn("batch: flusher step failed; retrying", "err", err, "in", errWait)
			wait = errWait
			errWait = min(errWait*2, 5*time.Second)
		} else {
			errWait = d.cfg.PollInterval
			if next := d.nextWake(); !next.IsZero() {
				wait = min(wait, max(0, next.Sub(d.clock.Now())))
				d.idleSteps = 0
			} else {
				wait = d.idleWait() // idle.go
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-d.wake:
		case <-t.C:
		}
		t.Stop()
		d.idling.Store(false)
	}
}

// nextWake returns the earliest time the flusher has something to do.
func (d *Delivery) nextWake() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.markInFlight()
	next := d.co.Deadline()
	for _, b := range d.inflight {
		if next.IsZero() || b.next.Before(next) {
			next = b.next
		}
	}
	return next
}

// Poll runs one step of the flusher at the clock's current time: acknowledge what is owed, claim
// dead consumers' entries when due, read new entries (unless the breaker is open or too much is
// buffered), flush the waiting items when a trigger fires, and send every batch whose attempt is
// due (concurrently, at most MaxInFlight), then settle their outcomes.
func (d *Delivery) Poll(ctx context.Context) error {
	d.pollMu.Lock()
	defer d.pollMu.Unlock()
	d.sinceLastPoll.Store(0)
	err := d.step(ctx, d.clock.Now())
	if err != nil {
		d.checkPending = true // a call that failed may have been run by Redis all the same
	}
	return err
}

// step is one step of the flusher at now (Poll). Callers hold pollMu.
func (d *Delivery) step(ctx context.Context, now time.Time) error {
	if err := d.retryAcks(ctx); err != nil {
		return err
	}
	if err := d.takeBackLostReads(ctx, now); err != nil {
		return err
	}
	if err := d.adopt(ctx, now); err != nil {
		return err
	}
	if err := d.maintain(ctx, now); err != nil {
		return err
	}
	if !d.breaker.Open() {
		if err := d.readNew(ctx, now); err != nil {
			return err
		}
	}
	d.mu.Lock()
	d.markInFlight()
	if trig, ok := d.co.Due(now); ok {
		batches := d.co.TakeDue(now, trig)
		for _, b := range batches {
			b.first, b.next = now, now
		}
		d.inflight = append(d.inflight, batches...)
		d.flushes[triggerIndex(trig)].Add(1)
		d.lastFlush = now
	}
	due := d.dueBatches(now)
	d.mu.Unlock()
	due, noteErr := d.note(ctx, due)
	due, recErr := d.record(ctx, due)
	return errors.Join(d.sendAll(ctx, due, now, false), noteErr, recErr)
}

// markInFlight tells the coalescer which sessions have a batch of messages or receipts in flight
// (their next items of that kind wait for it). Callers hold d.mu.
func (d *Delivery) markInFlight() {
	var sessions map[event.Kind]map[string]bool
	for _, b := range d.inflight {
		if !b.Kind.IsMessaging() {
			continue
		}
		if sessions == nil {
			sessions = map[event.Kind]map[string]bool{}
		}
		if sessions[b.Kind] == nil {
			sessions[b.Kind] = map[string]bool{}
		}
		for _, it := range b.Items {
			sessions[b.Kind][it.Winner.Event.SessionID] = true
		}
	}
	d.co.SetInFlight(sessions)
}

func triggerIndex(t Trigger) int {
	for i, x := range Triggers {
		if x == t {
			return i
		}
	}
	return 0
}

// buffered returns how many outbox entries the flusher holds: waiting, in flight, or owed an
// acknowledgement. Callers hold d.mu.
func (d *Delivery) buffered() int {
	n := len(d.unacked)
	for _, m := range d.co.waiting {
		n += len(m)
	}
	for _, b := range d.inflight {
		n += b.EntryCount()
	}
	return n
}

// hold adds entries read from the outbox to the waiting items and acknowledges at once the
// entries they supersede: each winner is durable in the outbox and stands for them. An
// acknowledgement Redis refuses is owed (retried by the next step).
func (d *Delivery) hold(ctx context.Context, entries []outbox.Entry, now time.Time) {
	var superseded []string
	d.mu.Lock()
	for _, e := range entries {
		if old, ok := d.co.Add(e, now); ok {
			superseded = append(superseded, old.ID)
		}
	}
	d.mu.Unlock()
	d.ack(ctx, superseded)
}

// ack acknowledges entries; when Redis refuses, they are owed and retried by the next step.
func (d *Delivery) ack(ctx context.Context, ids []string) {
	if len(ids) == 0 {
		return
	}
	if err := d.ob.Ack(ctx, ids...); err != nil {
		d.mu.Lock()
		d.unacked = append(d.unacked, ids...)
		d.mu.Unlock()
		d.log.Warn("batch: acknowledgement failed; retried next step", "entries", len(ids), "err", err)
	}
}

func (d *Delivery) readNew(ctx context.Context, now time.Time) error {
	for {
		d.mu.Lock()
		room := d.cfg.MaxBuffered - d.buffered()
		d.mu.Unlock()
		if room <= 0 {
			return nil
		}
		count := min(room, 500)
		entries, err := d.timedRead(func() ([]outbox.Entry, error) { return d.ob.ReadNew(ctx, int64(count)) })
		if err != nil {
			return err
		}
		caughtUp := len(entries) < count
		d.hold(ctx, d.takeIn(ctx, d.skipResent(entries, caughtUp), now, false), now)
		if caughtUp {
			return nil
		}
	}
}

// adopt follows the shards this replica holds (cluster mode): the entries of shards it just took
// wait before anything newer of them is read; the waiting entries of shards it lost are dropped,
// unacknowledged, for their new holder (outbox.Adopt).
func (d *Delivery) adopt(ctx context.Context, now time.Time) error {
	ad, err := d.ob.Adopt(ctx)
	if ad.Dropped != nil {
		d.mu.Lock()
		n := d.co.Drop(ad.Dropped)
		d.mu.Unlock()
		if n > 0 {
			d.log.Info("batch: dropped the waiting items of shards now held elsewhere", "items", n)
		}
	}
	if len(ad.Entries) > 0 {
		d.mu.Lock()
		have := map[string]bool{}
		for _, id := range d.heldIDs() {
			have[id] = true
		}
		d.mu.Unlock()
		fresh := make([]outbox.Entry, 0, len(ad.Entries))
		for _, e := range ad.Entries {
			if !have[e.ID] {
				fresh = append(fresh, e)
			}
		}
		d.hold(ctx, d.takeIn(ctx, fresh, now, true), now)
	}
	return err
}

// heldIDs returns the ids of every entry the flusher holds in memory (waiting or in flight).
// Callers hold d.mu.
func (d *Delivery) heldIDs() []string {
	var ids []string
	for _, m := range d.co.waiting {
		for _, it := range m {
			ids = append(ids, it.Winner.ID)
		}
	}
	for _, b := range d.inflight {
		for _, it := range b.Items {
			ids = append(ids, it.Winner.ID)
		}
	}
	return ids
}

// maintain runs every ClaimInterval: it first resets the idle time of every entry this gateway
// holds (so neither another gateway nor its own claim takes them during a long outage), then,
// unless the breaker is open, claims entries dead consumers left idle for ClaimMinIdle.
func (d *Delivery) maintain(ctx context.Context, now time.Time) error {
	if now.Before(d.nextClaim) {
		return nil
	}
	d.checkPending = true // every ClaimInterval, whatever was seen: a lost read costs at most that
	d.mu.Lock()
	held := d.heldIDs()
	d.mu.Unlock()
	for len(held) > 0 {
		n := min(len(held), 1000)
		if err := d.ob.Touch(ctx, held[:n]...); err != nil {
			return err
		}
		held = held[n:]
	}
	if d.breaker.Open() {
		d.nextClaim = now.Add(d.cfg.ClaimInterval)
		return nil
	}
	entries, next, err := d.claim(ctx)
	if err != nil {
		return err
	}
	d.claimCursor = next
	if next == "0-0" || next == "" {
		d.nextClaim = now.Add(d.cfg.ClaimInterval)
	}
	if len(entries) == 0 {
		return nil
	}
	d.mu.Lock()
	have := map[string]bool{}
	for _, id := range d.heldIDs() {
		have[id] = true
	}
	for _, id := range d.unacked {
		have[id] = true
	}
	d.mu.Unlock()
	var fresh []outbox.Entry
	for _, e := range entries {
		if !have[e.ID] {
			fresh = append(fresh, e)
		}
	}
	d.hold(ctx, d.takeIn(ctx, fresh, now, true), now)
	if added := len(fresh); added > 0 {
		d.log.Warn("batch: claimed outbox entries left idle by another gateway", "entries", added, "min_idle", d.cfg.ClaimMinIdle)
	}
	return nil
}

func (d *Delivery) dueBatches(now time.Time) []*Batch {
	var due []*Batch
	for _, b := range d.inflight {
		if !b.next.After(now) {
			due = append(due, b)
		}
	}
	return due
}

func (d *Delivery) retryAcks(ctx context.Context) error {
	d.mu.Lock()
	ids, keys := d.unacked, d.unackedBatches
	d.mu.Unlock()
	if len(ids) > 0 {
		if err := d.ob.Ack(ctx, ids...); err != nil {
			return err
		}
		d.mu.Lock()
		d.unacked = d.unacked[len(ids):]
		d.mu.Unlock()
	}
	if len(keys) > 0 {
		if err := d.ob.ForgetBatches(ctx, keys...); err != nil {
			return err
		}
		d.mu.Lock()
		d.unackedBatches = d.unackedBatches[len(keys):]
		d.mu.Unlock()
	}
	return nil
}

// claim claims dead consumers' idle entries from the cursor (maintain), timed like a read.
func (d *Delivery) claim(ctx context.Context) ([]outbox.Entry, string, error) {
	var next string
	entries, err := d.timedRead(func() ([]outbox.Entry, error) {
		var entries []outbox.Entry
		var err error
		entries, next, err = d.ob.Claim(ctx, d.cfg.ClaimMinIdle, d.claimCursor, 500)
		return entries, err
	})
	return entries, next, err
}

type sendResult struct {
	b   *Batch
	res laravel.BatchResult
	err error
	// done reports the attempt to the breaker (nil when the breaker refused the send).
	done func(BreakerMark)
	// held is set when the retry budget refused the retry: nothing was sent, and the budget's
	// floor makes room for it after heldFor.
	held    bool
	heldFor time.Duration
}

// sendAll sends the batches (at most MaxInFlight at once), a retry only if the retry budget
// allows it, each only if the breaker allows it, then settles each outcome (holds the retries the
// budget refused). final is the shutdown attempt, which the budget does not limit. The budget
// decides and the counters count when the send goes, so a reading of the counters between two
// sends sees what the budget allowed up to then.
func (d *Delivery) sendAll(ctx context.Context, due []*Batch, now time.Time, final bool) error {
	if len(due) == 0 {
		return nil
	}
	results := make([]sendResult, len(due))
	sem := make(chan struct{}, d.cfg.MaxInFlight)
	var wg sync.WaitGroup
	for i, b := range due {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			retry, budgeted := b.attempts > 0, !final
			if retry && budgeted {
				if ok, wait := d.budget.Retry(d.clock.Now()); !ok {
					results[i] = sendResult{b: b, held: true, heldFor: wait}
					return
				}
			}
			done, err := d.breaker.Allow()
			if err != nil {
				if retry && budgeted {
					d.budget.Refund(d.clock.Now()) // not sent: the retry it was allowed is given back
				}
				results[i] = sendResult{b: b, err: err}
				return
			}
			if retry {
				d.retried.Add(1)
			} else {
				d.firstAttempts.Add(1)
				d.budget.FirstAttempt(d.clock.Now())
			}
			res, err := d.post(ctx, b)
			results[i] = sendResult{b: b, res: res, err: err, done: done}
		}()
	}
	wg.Wait()
	var firstErr error
	held := 0
	for _, r := range results {
		if r.held {
			d.holdRetry(r, now)
			held++
			continue
		}
		if err := d.settle(ctx, r, now, final); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if held > 0 {
		d.log.Debug("batch: retries held back by the retry budget; they wait and are sent later", "held", held, "batches", len(due))
	}
	return firstErr
}

// holdRetry keeps a retry the retry budget refused in flight, due again after its backoff or when the
// budget's floor has made room for it, whichever is later: held back, never dropped.
func (d *Delivery) holdRetry(r sendResult, now time.Time) {
	d.retriesHeld.Add(1)
	wait := max(r.heldFor, d.policy.Backoff.Delay(r.b.attempts, 0, d.jitter()))
	d.mu.Lock()
	r.b.next = now.Add(wait)
	d.mu.Unlock()
}

func (d *Delivery) post(ctx context.Context, b *Batch) (laravel.BatchResult, error) {
	switch b.Kind {
	case event.KindQR:
		body := laravel.QRBatch{QRs: make([]laravel.QRItem, len(b.Items))}
		for i, it := range b.Items {
			ev := it.Winner.Event
			body.QRs[i] = laravel.QRItem{SessionID: ev.SessionID, QR: ev.Payload, Version: ev.Version, EventID: ev.ID, GeneratedAt: ev.Time}
		}
		return d.send.PostQRBatch(ctx, b.Key, body)
	case event.KindMessage:
		body := laravel.MessageBatch{Messages: make([]laravel.MessageItem, len(b.Items))}
		for i, it := range b.Items {
			body.Messages[i] = *it.Winner.Event.Message
		}
		return d.send.PostMessageBatch(ctx, b.Key, body)
	case event.KindReceipt:
		body := laravel.ReceiptBatch{Receipts: make([]laravel.ReceiptItem, len(b.Items))}
		for i, it := range b.Items {
			body.Receipts[i] = *it.Winner.Event.Receipt
		}
		return d.send.PostReceiptBatch(ctx, b.Key, body)
	default:
		body := laravel.StatusBatch{Statuses: make([]laravel.StatusItem, len(b.Items))}
		for i, it := range b.Items {
			ev := it.Winner.Event
			body.Statuses[i] = laravel.StatusItem{SessionID: ev.SessionID, EstadoQR: laravel.Status(ev.Payload), Version: ev.Version, EventID: ev.ID, ChangedAt: ev.Time}
		}
		return d.send.PostStatusBatch(ctx, b.Key, body)
	}
}

func (d *Delivery) removeInflight(b *Batch) {
	for i, x := range d.inflight {
		if x == b {
			d.inflight = append(d.inflight[:i], d.inflight[i+1:]...)
			return
		}
	}
}

// attempt describes one send of b for the policy, and keeps the items' run of 5xx answers: a 5xx
// starts or extends it, any other answer of Laravel's (a 2xx, a 3xx, a 4xx) ends it; a network
// error, a 409, a 429 or a refused send neither extend nor end it.
func (d *Delivery) attempt(r sendResult, now time.Time, final bool) (Attempt, Accounting) {
	b := r.b
	oc, status, retryAfter := outcomeOf(r.err)
	if oc != OutcomeRejected && oc != OutcomeAborted {
		b.attempts++
	}
	a := Attempt{
		Outcome: oc, Status: status, RetryAfter: retryAfter, Attempts: b.attempts, Items: len(b.Items),
		Final: final, Age: now.Sub(b.first), Jitter: d.jitter(),
	}
	var acc Accounting
	if oc == OutcomeDelivered {
		acc = accountItems(b.Items, r.res)
		a.Refused, a.Unaccounted = len(acc.Refused), len(acc.Unaccounted)
	}
	switch {
	case oc == OutcomeStatus && status >= 500 && status <= 599:
		since := now
		for _, it := range b.Items {
			if it.serverErrorSince.IsZero() {
				it.serverErrorSince = now
			}
			if it.serverErrorSince.Before(since) {
				since = it.serverErrorSince
			}
		}
		if len(b.Items) == 1 {
			b.Items[0].aloneFailures++
			a.AloneFailures = b.Items[0].aloneFailures
		}
		a.ServerErrorFor = now.Sub(since)
		d.mu.Lock()
		a.OthersDelivered = d.lastOK.After(since)
		d.mu.Unlock()
	case oc == OutcomeDelivered || oc == OutcomeUndecodable ||
		oc == OutcomeStatus && status != http.StatusConflict && status != http.StatusTooManyRequests:
		for _, it := range b.Items {
			it.serverErrorSince, it.aloneFailures = time.Time{}, 0
		}
	}
	return a, acc
}

// settle executes the policy's decision for one send.
func (d *Delivery) settle(ctx context.Context, r sendResult, now time.Time, final bool) error {
	b := r.b
	a, acc := d.attempt(r, now, final)
	dec := d.policy.Decide(a)
	if r.done != nil {
		r.done(dec.Breaker)
	}
	if dec.Failure != "" {
		d.countFailure(dec.Failure)
		d.logFailure(b, a, dec, r.err)
	}
	if dec.PauseAll > 0 {
		d.breaker.Pause(dec.PauseAll)
		d.log.Warn("batch: Laravel asked for a pause (Retry-After): no sends to Laravel until it ends",
			"status", a.Status, "retry_after", a.RetryAfter, "pause", dec.PauseAll, "max_retry_after", d.cfg.MaxRetryAfter)
	}
	switch dec.Action {
	case ActionAck:
		return d.delivered(ctx, b, r.res, acc, dec, now)
	case ActionRetry:
		next := now.Add(dec.Delay)
		if until := d.breaker.PausedUntil(); until.After(next) {
			next = until
		}
		d.mu.Lock()
		b.next = next
		d.mu.Unlock()
	case ActionSplit:
		half := len(b.Items) / 2
		d.mu.Lock()
		d.removeInflight(b)
		for _, items := range [][]*Item{b.Items[:half:half], b.Items[half:]} {
			d.inflight = append(d.inflight, &Batch{Kind: b.Kind, Key: batchKey(b.Kind, items), Items: items, Trigger: b.Trigger, first: now, next: now})
		}
		d.mu.Unlock()
		d.splits.Add(1)
		d.forget(ctx, b.Key) // each half is recorded under its own key before it is sent
		d.log.Warn("batch: splitting a batch to isolate the item Laravel refuses", "kind", b.Kind, "key", b.Key,
			"items", len(b.Items), "reason", dec.Reason, "err", r.err)
	case ActionDeadLetter:
		entries := make([]outbox.Entry, len(b.Items)) // the policy dead-letters items alone: one
		for i, it := range b.Items {
			entries[i] = it.Winner
		}
		reason := fmt.Sprintf("%s (batch %s): %v", dec.Reason, b.Key, r.err)
		if err := d.ob.DeadLetter(ctx, entries, reason); err != nil {
			return err // stays in flight; sent (and decided) again next step
		}
		d.deadLettered.Add(int64(len(entries)))
		d.settled(ctx, entries, SettledDeadLettered)
		d.mu.Lock()
		d.removeInflight(b)
		d.mu.Unlock()
		d.forget(ctx, b.Key)
	case ActionRequeue:
		d.expired.Add(1)
		d.log.Warn("batch: delivery budget exhausted; items go back to waiting (still pending in the outbox)",
			"kind", b.Kind, "key", b.Key, "items", len(b.Items), "attempts", b.attempts, "err", r.err)
		d.mu.Lock()
		d.removeInflight(b)
		superseded := d.co.readd(b.Items, now)
		d.mu.Unlock()
		d.forget(ctx, b.Key)
		ids := make([]string, len(superseded))
		for i, e := range superseded {
			ids[i] = e.ID
		}
		d.ack(ctx, ids)
	case ActionLeavePending:
		// Left as it is: pending in the outbox, recovered by the next start.
	}
	return nil
}

// countFailure counts a delivery failure under its label.
func (d *Delivery) countFailure(label string) {
	d.failed.Add(1)
	d.mu.Lock()
	d.failures[label]++
	d.mu.Unlock()
}

// logFailure logs a delivery failure: an error for answers that say the gateway or Laravel is
// misconfigured (a redirect, the token, a missing route), a warning otherwise.
func (d *Delivery) logFailure(b *Batch, a Attempt, dec Decision, err error) {
	level := slog.LevelWarn
	switch {
	case a.Status >= 300 && a.Status <= 399, a.Status == http.StatusUnauthorized, a.Status == http.StatusForbidden,
		a.Status == http.StatusNotFound, a.Status == http.StatusMethodNotAllowed, a.Status == http.StatusGone,
		a.Status == http.StatusMisdirectedRequest, a.Outcome == OutcomeUndecodable, a.Unaccounted > 0:
		level = slog.LevelError
	}
	d.log.Log(context.Background(), level, "batch: delivery to Laravel failed; the events stay pending (never dead-lettered for this)",
		"failure", dec.Failure, "reason", dec.Reason, "action", dec.Action.String(), "retry_in", dec.Delay,
		"kind", b.Kind, "key", b.Key, "items", len(b.Items), "attempt", a.Attempts, "err", err)
}

// delivered executes a 2xx: the items Laravel accounted for are acknowledged, the ones it refused
// by name are dead-lettered with its reason, the ones it did not account for are sent again under
// a new key (the version guard makes applying them twice harmless). At shutdown both of the
// latter stay pending.
func (d *Delivery) delivered(ctx context.Context, b *Batch, res laravel.BatchResult, acc Accounting, dec Decision, now time.Time) error {
	var ack []string
	var unaccounted, pending []*Item
	var applied, deadEntries []outbox.Entry // acknowledged; dead-lettered
	missing := make(map[int]bool, len(acc.Unaccounted))
	for _, i := range acc.Unaccounted {
		missing[i] = true
	}
	for i, it := range b.Items {
		reason, refused := acc.Refused[i]
		switch {
		case refused && dec.Refused == FateDeadLetter:
			entries := []outbox.Entry{it.Winner}
			if err := d.ob.DeadLetter(ctx, entries, fmt.Sprintf("laravel rejected item of batch %s: %s", b.Key, reason)); err != nil {
				return err // the batch stays in flight; its replay under the same key decides again
			}
			d.itemErrors.Add(1)
			d.deadLettered.Add(int64(len(entries)))
			deadEntries = append(deadEntries, it.Winner)
		case refused:
			pending = append(pending, it)
		case missing[i] && dec.Unaccounted == FateRetry:
			unaccounted = append(unaccounted, it)
		case missing[i]:
			pending = append(pending, it)
		default:
			ack = append(ack, it.Winner.ID)
			applied = append(applied, it.Winner)
			if d.onDelivered != nil {
				d.onDelivered(&it.Winner.Event)
			}
		}
	}
	d.settled(ctx, applied, SettledApplied)
	d.settled(ctx, deadEntries, SettledDeadLettered)
	d.sent.Add(int64(len(ack)))
	d.batchesSent.Add(1)
	if d.onBatchSent != nil {
		d.onBatchSent(b.Kind, len(b.Items))
	}
	d.mu.Lock()
	d.removeInflight(b)
	if len(ack) > 0 {
		d.lastOK = now
	}
	if len(unaccounted) > 0 {
		round := b.round + 1
		d.inflight = append(d.inflight, &Batch{Kind: b.Kind, Key: batchKeyRound(b.Kind, unaccounted, round), Items: unaccounted,
			Trigger: b.Trigger, round: round, attempts: b.attempts, first: b.first, next: now.Add(dec.Delay)})
	}
	if len(pending) > 0 {
		// Shutdown: kept in flight only so Close counts what it leaves pending.
		d.inflight = append(d.inflight, &Batch{Kind: b.Kind, Key: batchKey(b.Kind, pending), Items: pending, Trigger: b.Trigger, first: now, next: now})
	}
	d.mu.Unlock()
	if len(unaccounted) > 0 {
		d.log.Error("batch: Laravel's 2xx does not account for every item; those are sent again, not acknowledged",
			"key", b.Key, "items", len(b.Items), "updated", res.Updated, "stale", res.Stale, "failed", res.Failed,
			"named_errors", len(res.Errors), "unaccounted", len(unaccounted))
	}
	if err := d.ob.AckBatch(ctx, b.Key, ack...); err != nil {
		d.mu.Lock()
		d.unacked = append(d.unacked, ack...)
		d.unackedBatches = append(d.unackedBatches, b.Key)
		d.mu.Unlock()
		return err
	}
	return nil
}

// settled tells Options.Settled the events of entries whose fate is final, fate (none: nothing).
func (d *Delivery) settled(ctx context.Context, entries []outbox.Entry, fate Settlement) {
	if d.onSettled == nil || len(entries) == 0 {
		return
	}
	evs := make([]event.Event, len(entries))
	for i, e := range entries {
		evs[i] = e.Event
	}
	d.onSettled(ctx, evs, fate)
}

// HeldEvents returns the events the flusher holds in memory (waiting or in flight): the delivery
// sends them whatever happens to Redis meanwhile, so a replay of the message journal after Redis
// lost its data leaves their items out (by item identity: a redelivered item's event has a new id).
func (d *Delivery) HeldEvents() []event.Event {
	d.mu.Lock()
	defer d.mu.Unlock()
	var held []event.Event
	for _, m := range d.co.waiting {
		for _, it := range m {
			held = append(held, it.Winner.Event)
		}
	}
	for _, b := range d.inflight {
		for _, it := range b.Items {
			held = append(held, it.Winner.Event)
		}
	}
	return held
}

// HeldEventIDs returns the ids of the events HeldEvents returns.
func (d *Delivery) HeldEventIDs() map[string]bool {
	held := make(map[string]bool)
	for _, ev := range d.HeldEvents() {
		held[ev.ID] = true
	}
	return held
}

// Close stops the flusher and makes one bounded final attempt (bounded by ctx): everything waiting
// is flushed and every batch in flight is sent once. What is not delivered stays in the outbox,
// pending for this consumer, and is recovered at the next start.
func (d *Delivery) Close(ctx context.Context) error {
	if !d.closing.CompareAndSwap(false, true) {
		return nil
	}
	if d.cancel != nil {
		d.cancel()
		<-d.done
	}
	d.pollMu.Lock()
	defer d.pollMu.Unlock()
	now := d.clock.Now()
	if err := d.retryAcks(ctx); err != nil {
		d.log.Warn("batch: final acknowledgements failed", "err", err)
	}
	if !d.breaker.Open() {
		if err := d.readNew(ctx, now); err != nil {
			d.log.Warn("batch: final read failed", "err", err)
		}
	}
	d.mu.Lock()
	if d.buffered() > 0 {
		d.markInFlight() // a session's messages behind a batch in flight stay pending, in order
		batches := d.co.TakeAll(TriggerShutdown)
		for _, b := range batches {
			b.first = now
		}
		if len(batches) > 0 {
			d.flushes[triggerIndex(TriggerShutdown)].Add(1)
		}
		d.inflight = append(d.inflight, batches...)
	}
	all := append([]*Batch(nil), d.inflight...)
	d.mu.Unlock()
	all, noteErr := d.note(ctx, all)
	if noteErr != nil {
		d.log.Warn("batch: the final attempt leaves pending the batches the message journal did not note", "err", noteErr)
	}
	all, recErr := d.record(ctx, all)
	if recErr != nil {
		d.log.Warn("batch: the final attempt sends only batches recorded before: Redis did not take the others' records", "err", recErr)
	}
	err := d.sendAll(ctx, all, now, true)
	d.mu.Lock()
	left := 0
	for _, b := range d.inflight {
		left += b.EntryCount()
	}
	d.mu.Unlock()
	if left > 0 {
		d.log.Warn("batch: closed with undelivered events left pending in the outbox for the next start", "entries", left)
	} else {
		d.log.Info("batch: closed, nothing left in flight")
	}
	return err
}

// accountItems matches a 2xx answer to a batch's items with Account. Laravel names a refused item
// by its session id; a batch of messages or receipts may carry several items of one session, so
// the k-th error naming a session stands for the k-th item of that session in the batch (the
// order they were sent). Each item thus gets a key of its own and Account decides exactly as it
// does for QR and status batches, which carry one item per session.
func accountItems(items []*Item, res laravel.BatchResult) Accounting {
	keys := make([]string, len(items))
	nth := make(map[string]int, len(items))
	for i, it := range items {
		sid := it.Winner.Event.SessionID
		keys[i] = sid + "\x00" + strconv.Itoa(nth[sid])
		nth[sid]++
	}
	named := make(map[string]int, len(res.Errors))
	errs := make([]laravel.ItemError, len(res.Errors))
	for i, e := range res.Errors {
		errs[i] = laravel.ItemError{SessionID: e.SessionID + "\x00" + strconv.Itoa(named[e.SessionID]), Error: e.Error}
		named[e.SessionID]++
	}
	res.Errors = errs
	return Account(keys, res)
}
