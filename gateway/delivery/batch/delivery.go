package batch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"wagate/gateway/delivery"
	"wagate/gateway/event"
	"wagate/gateway/laravel"
	"wagate/gateway/outbox"
)

// Sender posts batches to Laravel; *laravel.Client implements it.
type Sender interface {
	PostQRBatch(ctx context.Context, idempotencyKey string, b laravel.QRBatch) (laravel.BatchResult, error)
	PostStatusBatch(ctx context.Context, idempotencyKey string, b laravel.StatusBatch) (laravel.BatchResult, error)
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
	DefaultDeliveryTimeout  = 2 * time.Minute
	DefaultPollInterval     = 100 * time.Millisecond
	DefaultMaxInFlight      = 4
	DefaultMaxBuffered      = 5000
	DefaultClaimInterval    = 30 * time.Second
)

// Config configures batch delivery. Zero fields take the defaults.
type Config struct {
	// BatchSize is the most items a batch carries; reaching it flushes (default 50).
	BatchSize int
	// BatchInterval is the longest an item waits before a time flush (default 5 s).
	BatchInterval time.Duration
	// PriorityInterval bounds how long a HIGH event waits (default 1 s). The flusher lingers a
	// twentieth of it (50 ms by default) so HIGH events of many sessions share one batch.
	PriorityInterval time.Duration
	// DeliveryTimeout bounds the retries of one batch; past it the batch's items go back to the
	// waiting items (still pending in the outbox) and are re-batched. Nothing is dropped.
	DeliveryTimeout time.Duration
	// PollInterval is how often the flusher looks for entries appended by other gateways.
	PollInterval time.Duration
	// MaxInFlight bounds the batches sent concurrently (default 4).
	MaxInFlight int
	// MaxBuffered bounds the items held in memory (waiting or in flight); above it the flusher
	// stops reading the outbox (default 5000).
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
}

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

	wake          chan struct{}
	sinceLastPoll atomic.Int64

	// Owned by the flusher (Poll); mu guards them for the metrics reader.
	mu          sync.Mutex
	co          *Coalescer
	inflight    []*Batch
	unacked     []string // delivered but not yet acknowledged (Redis was down)
	nextClaim   time.Time
	claimCursor string
	lastFlush   time.Time
	started     time.Time

	sent, batchesSent, failed, retried, expired, deadLettered, itemErrors atomic.Int64
	splits                                                                atomic.Int64
	enqueueFailed                                                         atomic.Int64
	flushes                                                               [4]atomic.Int64
	batchSizes                                                            batchSizeObserver

	pollMu  sync.Mutex // one Poll at a time
	cancel  context.CancelFunc
	done    chan struct{}
	closing atomic.Bool
}

var _ delivery.Delivery = (*Delivery)(nil)

// New returns a Delivery on the given outbox; call Start to run its flusher.
func New(opts Options) (*Delivery, error) {
	if opts.Outbox == nil || opts.Sender == nil {
		return nil, errors.New("batch: New needs an outbox and a sender")
	}
	cfg := opts.Config
	cfg.fill()
	d := &Delivery{
		ob: opts.Outbox, send: opts.Sender, cfg: cfg, clock: opts.Clock, jitter: opts.Jitter, log: opts.Logger,
		wake: make(chan struct{}, 1),
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
	d.co = NewCoalescer(cfg.BatchSize, cfg.BatchInterval, cfg.PriorityInterval/20)
	d.started = d.clock.Now()
	d.lastFlush = d.started
	d.nextClaim = d.started
	d.batchSizes = newBatchSizeObserver()
	return d, nil
}

// Config returns the effective configuration.
func (d *Delivery) Config() Config { return d.cfg }

// Outbox returns the outbox the delivery appends to.
func (d *Delivery) Outbox() *outbox.Outbox { return d.ob }

// Breaker returns the circuit breaker.
func (d *Delivery) Breaker() *Breaker { return d.breaker }

// Deliver appends ev durably to the outbox; nil means accepted. A full outbox (or a Redis that does
// not answer) makes it wait up to the outbox's AppendTimeout and then fail (an error matching
// outbox.ErrFull when full); every refusal is counted (enqueue_failed) and logged.
func (d *Delivery) Deliver(ctx context.Context, ev event.Event) error {
	if _, err := d.ob.Append(ctx, ev); err != nil {
		d.enqueueFailed.Add(1) // full outbox, Redis unavailable, or an invalid event
		return fmt.Errorf("batch deliver: %w", err)
	}
	n := d.sinceLastPoll.Add(1)
	if ev.Priority == event.PriorityHigh || n >= int64(d.cfg.BatchSize) {
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
// acknowledge) into the waiting items. Start calls it; tests may call it before Poll.
func (d *Delivery) Recover(ctx context.Context) (int, error) {
	d.pollMu.Lock()
	defer d.pollMu.Unlock()
	total := 0
	after := "0"
	for {
		entries, err := d.ob.ReadOwnPending(ctx, after, 500)
		if err != nil {
			return total, err
		}
		if len(entries) == 0 {
			break
		}
		now := d.clock.Now()
		d.mu.Lock()
		for _, e := range entries {
			d.co.Add(e, now)
		}
		d.mu.Unlock()
		total += len(entries)
		after = entries[len(entries)-1].ID
	}
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
	}
}

// nextWake returns the earliest time the flusher has something to do.
func (d *Delivery) nextWake() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
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
	now := d.clock.Now()

	if err := d.retryAcks(ctx); err != nil {
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
	if trig, ok := d.co.Due(now); ok {
		batches := d.co.TakeAll(trig)
		for _, b := range batches {
			b.first, b.next = now, now
		}
		d.inflight = append(d.inflight, batches...)
		d.flushes[triggerIndex(trig)].Add(1)
		d.lastFlush = now
	}
	due := d.dueBatches(now)
	d.mu.Unlock()
	return d.sendAll(ctx, due, now, false)
}

func triggerIndex(t Trigger) int {
	for i, x := range Triggers {
		if x == t {
			return i
		}
	}
	return 0
}

func (d *Delivery) buffered() int {
	n := 0
	for _, m := range d.co.waiting {
		n += len(m)
	}
	for _, b := range d.inflight {
		n += len(b.Items)
	}
	return n
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
		entries, err := d.ob.ReadNew(ctx, int64(count))
		if err != nil {
			return err
		}
		d.mu.Lock()
		for _, e := range entries {
			d.co.Add(e, now)
		}
		d.mu.Unlock()
		if len(entries) < count {
			return nil
		}
	}
}

// heldIDs returns the ids of every entry the flusher holds in memory (waiting or in flight).
// Callers hold d.mu.
func (d *Delivery) heldIDs() []string {
	var ids []string
	for _, m := range d.co.waiting {
		for _, it := range m {
			for _, e := range it.Entries() {
				ids = append(ids, e.ID)
			}
		}
	}
	for _, b := range d.inflight {
		for _, it := range b.Items {
			for _, e := range it.Entries() {
				ids = append(ids, e.ID)
			}
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
	entries, next, err := d.ob.Claim(ctx, d.cfg.ClaimMinIdle, d.claimCursor, 500)
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
	defer d.mu.Unlock()
	have := map[string]bool{}
	for _, id := range d.heldIDs() {
		have[id] = true
	}
	added := 0
	for _, e := range entries {
		if !have[e.ID] {
			d.co.Add(e, now)
			added++
		}
	}
	if added > 0 {
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
	ids := d.unacked
	d.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	if err := d.ob.Ack(ctx, ids...); err != nil {
		return err
	}
	d.mu.Lock()
	d.unacked = d.unacked[len(ids):]
	d.mu.Unlock()
	return nil
}

type sendResult struct {
	b   *Batch
	res laravel.BatchResult
	err error
}

// sendAll sends the batches (at most MaxInFlight at once), then settles each outcome. final is the
// shutdown attempt: failures are left pending in the outbox instead of rescheduled.
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
			res, err := d.breaker.Execute(func() (laravel.BatchResult, error) { return d.post(ctx, b) })
			results[i] = sendResult{b: b, res: res, err: err}
		}()
	}
	wg.Wait()
	var firstErr error
	for _, r := range results {
		if err := d.settle(ctx, r, now, final); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
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

// serverErrorAttempts is how many times a batch answered with 500 is tried before its items are
// dead-lettered.
const serverErrorAttempts = 3

func statusOf(err error) int {
	var se *laravel.StatusError
	if errors.As(err, &se) {
		return se.Status
	}
	return 0
}

// splittable reports answers that may be caused by one item of a batch (so halves may succeed):
// a bad request, a validation error, a body too large, an exception.
func splittable(status int) bool {
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity, http.StatusInternalServerError:
		return true
	}
	return false
}

func (d *Delivery) settle(ctx context.Context, r sendResult, now time.Time, final bool) error {
	b := r.b
	oc := classify(r.err)
	if oc != outcomeRejected && oc != outcomeAborted {
		b.attempts++
		if b.attempts > 1 {
			d.retried.Add(1)
		}
	}
	if oc == outcomePermanent && statusOf(r.err) == http.StatusInternalServerError && b.attempts < serverErrorAttempts && !final {
		oc = outcomeRetry // an exception in Laravel is often transient: a few tries, then dead letters
	}
	switch oc {
	case outcomeDelivered:
		return d.delivered(ctx, b, r.res)
	case outcomePermanent:
		d.failed.Add(1)
		if len(b.Items) > 1 && splittable(statusOf(r.err)) && !final {
			// One bad item must not take the others down: retry each half under its own key, down
			// to single items, and dead-letter only those that are refused alone.
			half := len(b.Items) / 2
			d.mu.Lock()
			d.removeInflight(b)
			for _, items := range [][]*Item{b.Items[:half:half], b.Items[half:]} {
				d.inflight = append(d.inflight, &Batch{Kind: b.Kind, Key: batchKey(b.Kind, items), Items: items, Trigger: b.Trigger, first: now, next: now})
			}
			d.mu.Unlock()
			d.splits.Add(1)
			d.log.Warn("batch: Laravel refused a batch; splitting it to isolate the refused items", "kind", b.Kind, "key", b.Key, "items", len(b.Items), "err", r.err)
			return nil
		}
		reason := fmt.Sprintf("laravel refused the %s batch %s: %v", b.Kind, b.Key, r.err)
		var entries []outbox.Entry
		for _, it := range b.Items {
			entries = append(entries, it.Entries()...)
		}
		if err := d.ob.DeadLetter(ctx, entries, reason); err != nil {
			return err // stays in flight; retried (and re-sent) next step
		}
		d.deadLettered.Add(int64(len(entries)))
		d.mu.Lock()
		d.removeInflight(b)
		d.mu.Unlock()
		return nil
	}
	if oc == outcomeRetry {
		d.failed.Add(1)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if final || oc == outcomeAborted {
		return nil // left pending in the outbox for the next start
	}
	if now.Sub(b.first) >= d.cfg.DeliveryTimeout {
		d.expired.Add(1)
		d.log.Warn("batch: delivery budget exhausted; items go back to waiting (still pending in the outbox)",
			"kind", b.Kind, "key", b.Key, "items", len(b.Items), "attempts", b.attempts, "err", r.err)
		d.removeInflight(b)
		d.co.readd(b.Items, now)
		return nil
	}
	if oc == outcomeRejected {
		b.next = now.Add(d.cfg.Backoff.Delay(1, 0, d.jitter()))
		return nil
	}
	b.next = now.Add(d.cfg.Backoff.Delay(b.attempts, laravel.RetryAfter(r.err), d.jitter()))
	d.log.Info("batch: send failed, will retry under the same Idempotency-Key", "kind", b.Kind, "key", b.Key,
		"items", len(b.Items), "attempt", b.attempts, "retry_in", b.next.Sub(now), "err", r.err)
	return nil
}

// delivered acknowledges a 2xx batch: items Laravel rejected one by one go to the dead-letter
// stream with its reason, the rest (with their superseded entries) are acknowledged.
func (d *Delivery) delivered(ctx context.Context, b *Batch, res laravel.BatchResult) error {
	rejected := map[string]string{}
	for _, e := range res.Errors {
		rejected[e.SessionID] = e.Error
	}
	var ack []string
	matched := 0
	for _, it := range b.Items {
		if reason, bad := rejected[it.Winner.Event.SessionID]; bad {
			matched++
			entries := it.Entries()
			if err := d.ob.DeadLetter(ctx, entries, fmt.Sprintf("laravel rejected item of batch %s: %s", b.Key, reason)); err != nil {
				return err
			}
			d.itemErrors.Add(1)
			d.deadLettered.Add(int64(len(entries)))
			delete(rejected, it.Winner.Event.SessionID)
			continue
		}
		for _, e := range it.Entries() {
			ack = append(ack, e.ID)
		}
	}
	if res.Failed > matched {
		d.log.Warn("batch: Laravel counted failed items it did not name; they cannot be told apart and are acknowledged",
			"key", b.Key, "failed", res.Failed, "named", matched)
	}
	d.sent.Add(int64(len(b.Items) - matched))
	d.batchesSent.Add(1)
	d.batchSizes.observe(b.Kind, len(b.Items))
	d.mu.Lock()
	d.removeInflight(b)
	d.mu.Unlock()
	if err := d.ob.Ack(ctx, ack...); err != nil {
		d.mu.Lock()
		d.unacked = append(d.unacked, ack...)
		d.mu.Unlock()
		return err
	}
	return nil
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
