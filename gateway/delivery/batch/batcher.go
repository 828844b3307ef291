// Package batch owns the gateway's batch delivery mode (the seed's "after"): events are appended
// durably to the Redis Streams outbox (package outbox) and a flusher per gateway reads them through
// the consumer group, coalesces them per session and kind (latest version wins; the superseded
// entries are acknowledged at once, their winner being durable in the outbox), and sends them to
// Laravel's batch endpoints in batches of at most BatchSize items, on size, on time (BatchInterval
// since the oldest waiting item) or on priority (a HIGH event, within PriorityInterval, taking the
// waiting normal items along). Entries are acknowledged only after a 2xx that accounts for them.
//
// What happens after each send is decided by a pure function, Policy.Decide (policy.go, stated
// row by row in docs/batch-delivery.md): dead letters only for items Laravel refused one by one;
// every other failure is retried under the same Idempotency-Key with backoff, counted by the
// circuit breaker (Breaker) and by status in the metrics; a Retry-After pauses every send.
//
// The pieces are separate and each counts what it does: the coalescer (Coalescer), the policy
// (Policy), the retry spacing (Backoff), the breaker (Breaker) and the flusher (Delivery), which
// only executes the policy's decisions.
package batch

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"time"

	"wagate/gateway/event"
	"wagate/gateway/outbox"
)

// Trigger says why a flush happened.
type Trigger string

// Flush triggers.
const (
	TriggerSize     Trigger = "size"
	TriggerTime     Trigger = "time"
	TriggerPriority Trigger = "priority"
	TriggerShutdown Trigger = "shutdown"
)

// Triggers lists every trigger, in a stable order (metrics labels).
var Triggers = []Trigger{TriggerSize, TriggerTime, TriggerPriority, TriggerShutdown}

// Item is one coalesced item of a batch: the winning (latest-version) entry of a session and kind.
type Item struct {
	// Winner is the entry whose event is sent.
	Winner outbox.Entry
	// Since is when the first entry of this session and kind started waiting.
	Since time.Time

	// serverErrorSince is when this item's current run of 5xx answers began (zero: none); it
	// survives splits and re-batching, so a poison item is found however it is batched.
	serverErrorSince time.Time
	// aloneFailures counts the consecutive 5xx answers to a batch of this item alone.
	aloneFailures int
}

// Batch is a set of coalesced items of one kind sent in one request. Its Key (the
// Idempotency-Key) depends only on the winners' event ids, so it stays the same across retries and
// a replay of the same content after a restart carries the same key.
type Batch struct {
	Kind    event.Kind
	Key     string
	Items   []*Item
	Trigger Trigger

	round    int       // how many times unaccounted items were re-sent under a new key
	attempts int       // HTTP attempts made
	first    time.Time // when the first attempt was due
	next     time.Time // when the next attempt is due
}

// EntryCount returns how many outbox entries the batch holds (one per item: superseded entries
// are acknowledged when they are coalesced).
func (b *Batch) EntryCount() int { return len(b.Items) }

func batchKey(kind event.Kind, items []*Item) string { return batchKeyRound(kind, items, 0) }

// batchKeyRound is the key of a batch of items; round > 0 makes a new key for the same items,
// for re-sending the items a 2xx did not account for (a replay of the old key would only
// return the same answer).
func batchKeyRound(kind event.Kind, items []*Item, round int) string {
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.Winner.Event.ID
	}
	slices.Sort(ids)
	seed := string(kind) + "\n" + strings.Join(ids, "\n")
	if round > 0 {
		seed += "\nround " + strconv.Itoa(round)
	}
	sum := sha256.Sum256([]byte(seed))
	return "wagate-" + string(kind) + "-" + hex.EncodeToString(sum[:16])
}

// Coalescer holds the items waiting to be sent, one per session and kind, and decides when they
// are due. It is not safe for concurrent use (the flusher owns it).
type Coalescer struct {
	size           int
	interval       time.Duration
	priorityLinger time.Duration

	waiting   map[event.Kind]map[string]*Item
	highSince time.Time // arrival of the oldest waiting HIGH event; zero when none
	coalesced int64
}

// NewCoalescer returns a Coalescer flushing at size items, interval after the oldest waiting item,
// or priorityLinger after the oldest waiting HIGH event.
func NewCoalescer(size int, interval, priorityLinger time.Duration) *Coalescer {
	return &Coalescer{
		size: size, interval: interval, priorityLinger: priorityLinger,
		waiting: map[event.Kind]map[string]*Item{event.KindQR: {}, event.KindStatus: {}},
	}
}

// Add puts an entry read at now among the waiting items. If an item of the same session and kind
// waits, the higher version wins and Add returns the other one (counted as coalesced): the
// caller acknowledges it, its winner standing for it in the outbox.
func (c *Coalescer) Add(e outbox.Entry, now time.Time) (superseded outbox.Entry, ok bool) {
	m := c.waiting[e.Event.Kind]
	if m == nil {
		m = map[string]*Item{}
		c.waiting[e.Event.Kind] = m
	}
	if e.Event.Priority == event.PriorityHigh && c.highSince.IsZero() {
		c.highSince = now
	}
	it, found := m[e.Event.SessionID]
	if !found {
		m[e.Event.SessionID] = &Item{Winner: e, Since: now}
		return outbox.Entry{}, false
	}
	c.coalesced++
	if e.Event.Version > it.Winner.Event.Version {
		superseded, it.Winner = it.Winner, e
		return superseded, true
	}
	return e, true
}

// readd puts back the items of a batch that could not be delivered in time; they wait anew. An
// item meeting another of the same session and kind merges with it (not counted again) and the
// older entry is returned, for the caller to acknowledge.
func (c *Coalescer) readd(items []*Item, now time.Time) (superseded []outbox.Entry) {
	for _, it := range items {
		k, sid := it.Winner.Event.Kind, it.Winner.Event.SessionID
		if it.Winner.Event.Priority == event.PriorityHigh && c.highSince.IsZero() {
			c.highSince = now
		}
		cur, ok := c.waiting[k][sid]
		if !ok {
			c.waiting[k][sid] = &Item{Winner: it.Winner, Since: now, serverErrorSince: it.serverErrorSince}
			continue
		}
		if it.Winner.Event.Version > cur.Winner.Event.Version {
			superseded = append(superseded, cur.Winner)
			cur.Winner, cur.serverErrorSince, cur.aloneFailures = it.Winner, it.serverErrorSince, 0
		} else {
			superseded = append(superseded, it.Winner)
		}
	}
	return superseded
}

// Waiting returns the number of waiting items of kind k.
func (c *Coalescer) Waiting(k event.Kind) int { return len(c.waiting[k]) }

// Coalesced returns how many entries were superseded so far.
func (c *Coalescer) Coalesced() int64 { return c.coalesced }

func (c *Coalescer) oldest() time.Time {
	var t time.Time
	for _, m := range c.waiting {
		for _, it := range m {
			if t.IsZero() || it.Since.Before(t) {
				t = it.Since
			}
		}
	}
	return t
}

// Due reports whether the waiting items must be flushed at now, and why. Size wins over priority,
// priority over time.
func (c *Coalescer) Due(now time.Time) (Trigger, bool) {
	for _, m := range c.waiting {
		if len(m) >= c.size {
			return TriggerSize, true
		}
	}
	if !c.highSince.IsZero() && !now.Before(c.highSince.Add(c.priorityLinger)) {
		return TriggerPriority, true
	}
	if o := c.oldest(); !o.IsZero() && !now.Before(o.Add(c.interval)) {
		return TriggerTime, true
	}
	return "", false
}

// Deadline returns when the waiting items become due by time or priority; zero when none wait.
func (c *Coalescer) Deadline() time.Time {
	o := c.oldest()
	if o.IsZero() {
		return time.Time{}
	}
	d := o.Add(c.interval)
	if !c.highSince.IsZero() {
		if p := c.highSince.Add(c.priorityLinger); p.Before(d) {
			d = p
		}
	}
	return d
}

// TakeAll removes every waiting item and returns them as batches of at most size items per kind,
// oldest items first, status batches before QR batches.
func (c *Coalescer) TakeAll(trigger Trigger) []*Batch {
	var out []*Batch
	for _, kind := range []event.Kind{event.KindStatus, event.KindQR} {
		m := c.waiting[kind]
		if len(m) == 0 {
			continue
		}
		items := make([]*Item, 0, len(m))
		for _, it := range m {
			items = append(items, it)
		}
		slices.SortFunc(items, func(a, b *Item) int {
			if c := a.Since.Compare(b.Since); c != 0 {
				return c
			}
			return strings.Compare(a.Winner.ID, b.Winner.ID)
		})
		for len(items) > 0 {
			n := min(c.size, len(items))
			chunk := items[:n:n]
			items = items[n:]
			// Within a batch, items go in event-id order: the same items always make the same
			// body, so a replay under the same Idempotency-Key matches the stored request.
			slices.SortFunc(chunk, func(a, b *Item) int { return strings.Compare(a.Winner.Event.ID, b.Winner.Event.ID) })
			out = append(out, &Batch{Kind: kind, Key: batchKey(kind, chunk), Items: chunk, Trigger: trigger})
		}
		c.waiting[kind] = map[string]*Item{}
	}
	c.highSince = time.Time{}
	return out
}
