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
	recorded bool      // its composition is recorded in Redis (resume.go): it may be sent
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

// Coalescer holds the items waiting to be sent and decides when they are due: QR codes and
// statuses one per session and kind (the latest version stands for the others), messages and
// receipts every one of them (never coalesced), released a session at a time in sequence order.
// It is not safe for concurrent use (the flusher owns it).
type Coalescer struct {
	size            int
	interval        time.Duration
	priorityLinger  time.Duration
	prioritySpacing time.Duration
	messageInterval time.Duration
	// lastState is when QR codes and statuses were last taken for a flush (zero: never).
	lastState time.Time

	// waiting holds QR and status items by session id, message and receipt items by event id.
	waiting   map[event.Kind]map[string]*Item
	highSince time.Time // arrival of the oldest waiting HIGH event; zero when none
	coalesced int64
	// inFlight holds, per messaging kind, the sessions with a batch of that kind in flight: their
	// next items wait for it, so a chat's messages reach Laravel in sequence order.
	inFlight map[event.Kind]map[string]bool
}

// NewCoalescer returns a Coalescer flushing at size items of one kind, interval after the oldest
// waiting QR or status item, or priorityLinger after the oldest waiting HIGH event. Messages and
// receipts are flushed DefaultMessageInterval after the oldest of them (SetMessageInterval).
func NewCoalescer(size int, interval, priorityLinger time.Duration) *Coalescer {
	return &Coalescer{
		size: size, interval: interval, priorityLinger: priorityLinger, messageInterval: DefaultMessageInterval,
		waiting: map[event.Kind]map[string]*Item{event.KindQR: {}, event.KindStatus: {}, event.KindMessage: {}, event.KindReceipt: {}},
	}
}

// SetMessageInterval sets how long the oldest waiting message or receipt waits before a flush.
func (c *Coalescer) SetMessageInterval(d time.Duration) { c.messageInterval = d }

// SetPrioritySpacing sets how soon after the previous flush of QR codes and statuses a priority
// flush may follow (zero: right away), so a burst of HIGH events shares few batches.
func (c *Coalescer) SetPrioritySpacing(d time.Duration) { c.prioritySpacing = d }

// PriorityDue is when waiting HIGH events are due: linger after the oldest of them arrived
// (highSince), so HIGH events of many sessions share a batch, and no sooner than spacing after
// the previous flush of QR codes and statuses (lastState), so a burst of them (a reconnect wave,
// the backlog of a Redis outage) costs Laravel at most one priority flush per spacing instead of
// one per event. Zero when no HIGH event waits. A HIGH event thus waits at most
// max(linger, spacing). It is a pure function.
func PriorityDue(highSince, lastState time.Time, linger, spacing time.Duration) time.Time {
	if highSince.IsZero() {
		return time.Time{}
	}
	due := highSince.Add(linger)
	if !lastState.IsZero() {
		if paced := lastState.Add(spacing); paced.After(due) {
			due = paced
		}
	}
	return due
}

// priorityDue is PriorityDue of the waiting HIGH events.
func (c *Coalescer) priorityDue() time.Time {
	return PriorityDue(c.highSince, c.lastState, c.priorityLinger, c.prioritySpacing)
}

// SetInFlight tells the coalescer which sessions have a batch of messages or receipts in flight,
// per kind: their waiting items of that kind are neither due nor taken until it is settled.
func (c *Coalescer) SetInFlight(sessions map[event.Kind]map[string]bool) { c.inFlight = sessions }

// waitingKey is the key an event waits under: its session for QR codes and statuses (one item
// per session, the latest version wins), its item for messages and receipts (outbox.ItemKey:
// never coalesced with another message, but two entries of one item wait as one). Keyed by event
// id, a message WhatsApp redelivered under a new sequence while the journal's replay of it waited
// went out twice in one batch once an evicting Redis had taken its once key (chaos seed 1
// schedule 18, -kinds redis-evict).
func waitingKey(ev event.Event) string {
	if ev.Kind.IsMessaging() {
		if item := outbox.ItemKey(ev); item != "" {
			return item
		}
		return ev.ID
	}
	return ev.SessionID
}

// ready reports whether a waiting item may be taken now: always for QR codes and statuses; for
// messages and receipts only while no batch of its session and kind is in flight.
func (c *Coalescer) ready(k event.Kind, it *Item) bool {
	return !k.IsMessaging() || !c.inFlight[k][it.Winner.Event.SessionID]
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
	key := waitingKey(e.Event)
	it, found := m[key]
	if !found {
		m[key] = &Item{Winner: e, Since: now}
		return outbox.Entry{}, false
	}
	if it.Winner.ID == e.ID && e.Event.Kind.IsMessaging() {
		return outbox.Entry{}, false // the same entry read twice: nothing to acknowledge
	}
	// For messages and receipts only two entries of one item get here (the same event re-driven
	// twice, or appended again under a new event: a redelivery, the journal's replay): one stands
	// for the other.
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
		k, key := it.Winner.Event.Kind, waitingKey(it.Winner.Event)
		if it.Winner.Event.Priority == event.PriorityHigh && c.highSince.IsZero() {
			c.highSince = now
		}
		cur, ok := c.waiting[k][key]
		if !ok {
			c.waiting[k][key] = &Item{Winner: it.Winner, Since: now, serverErrorSince: it.serverErrorSince}
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

// Drop removes the waiting items of the sessions dropped matches (their shard moved to another
// replica, which delivers them from the outbox) and returns how many it removed; nothing is
// acknowledged.
func (c *Coalescer) Drop(dropped func(sessionID string) bool) int {
	n := 0
	for _, m := range c.waiting {
		for key, it := range m {
			if dropped(it.Winner.Event.SessionID) {
				delete(m, key)
				n++
			}
		}
	}
	return n
}

// Waiting returns the number of waiting items of kind k.
func (c *Coalescer) Waiting(k event.Kind) int { return len(c.waiting[k]) }

// Coalesced returns how many entries were superseded so far.
func (c *Coalescer) Coalesced() int64 { return c.coalesced }

// oldest returns when the oldest ready item of the QR and status kinds (messaging false) or of the
// message and receipt kinds (messaging true) started waiting; zero when none waits.
func (c *Coalescer) oldest(messaging bool) time.Time {
	var t time.Time
	for k, m := range c.waiting {
		if k.IsMessaging() != messaging {
			continue
		}
		for _, it := range m {
			if c.ready(k, it) && (t.IsZero() || it.Since.Before(t)) {
				t = it.Since
			}
		}
	}
	return t
}

// readyCount returns how many waiting items of kind k may be taken now.
func (c *Coalescer) readyCount(k event.Kind) int {
	m := c.waiting[k]
	if !k.IsMessaging() || len(c.inFlight[k]) == 0 {
		return len(m)
	}
	n := 0
	for _, it := range m {
		if c.ready(k, it) {
			n++
		}
	}
	return n
}

// Due reports whether the waiting items must be flushed at now, and why. Size wins over priority,
// priority over time. QR codes and statuses are due BatchInterval after the oldest of them,
// messages and receipts the message interval after the oldest of them that may be taken.
func (c *Coalescer) Due(now time.Time) (Trigger, bool) {
	for k := range c.waiting {
		if c.readyCount(k) >= c.size {
			return TriggerSize, true
		}
	}
	if at := c.priorityDue(); !at.IsZero() && !now.Before(at) {
		return TriggerPriority, true
	}
	if o := c.oldest(false); !o.IsZero() && !now.Before(o.Add(c.interval)) {
		return TriggerTime, true
	}
	if o := c.oldest(true); !o.IsZero() && !now.Before(o.Add(c.messageInterval)) {
		return TriggerTime, true
	}
	return "", false
}

// Deadline returns when the waiting items become due by time or priority; zero when none wait
// (or only messages and receipts of sessions with a batch in flight).
func (c *Coalescer) Deadline() time.Time {
	var d time.Time
	earliest := func(t time.Time) {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	if o := c.oldest(false); !o.IsZero() {
		earliest(o.Add(c.interval))
		earliest(c.priorityDue())
	}
	if o := c.oldest(true); !o.IsZero() {
		earliest(o.Add(c.messageInterval))
	}
	return d
}

// Readiness is how far the oldest waiting item of a group of kinds (QR codes and statuses;
// messages and receipts) is into its own interval.
type Readiness int

const (
	// Young: nothing waits, or the oldest item waited less than half its interval.
	Young Readiness = iota
	// Ripe: the oldest item waited at least half its interval; the group rides a flush that goes
	// anyway.
	Ripe
	// Due: the group's size or interval is reached; it is flushed.
	Due
)

// FlushTakes decides which kinds a flush for trigger takes, each kind's batch being one request
// to Laravel, from how ready the QR codes and statuses (state) and the messages and receipts
// (messaging) are. At shutdown, everything. Else a flush goes when the trigger is priority or a
// group is due; it takes a group that is due, and one that is ripe (a group rides a flush going
// anyway at most twice per its interval, and never waits longer than its interval); a priority
// flush also takes the statuses (the HIGH events are statuses) however young. When every flush
// took every waiting kind, a reconnect wave's priority flushes (one per priority spacing) split
// the QR codes, messages and receipts into as many small batches, one request per kind and flush
// (issue 19, chaos whatsapp-down: 24.5 requests/s to Laravel from 20 sessions). It is a pure
// function.
func FlushTakes(trigger Trigger, state, messaging Readiness) (statuses, qrs, messages bool) {
	if trigger == TriggerShutdown {
		return true, true, true
	}
	going := trigger == TriggerPriority || state == Due || messaging == Due
	if !going {
		return false, false, false
	}
	return trigger == TriggerPriority || state >= Ripe, state >= Ripe, messaging >= Ripe
}

// TakeDue takes what a flush for trigger at now sends (FlushTakes), so a chat's one-second
// interval does not flush young statuses every second, nor a priority flush young chats.
func (c *Coalescer) TakeDue(now time.Time, trigger Trigger) []*Batch {
	statuses, qrs, messages := FlushTakes(trigger, c.stateReadiness(now), c.messagingReadiness(now))
	if statuses && c.Waiting(event.KindStatus) > 0 || qrs && c.Waiting(event.KindQR) > 0 {
		c.lastState = now
	}
	return c.take(trigger, statuses, qrs, messages)
}

// TakeAll removes every waiting item that may be taken and returns them as batches of at most
// size items per kind, oldest items first: status, QR, message then receipt batches.
func (c *Coalescer) TakeAll(trigger Trigger) []*Batch { return c.take(trigger, true, true, true) }

func (c *Coalescer) take(trigger Trigger, statuses, qrs, messages bool) []*Batch {
	var out []*Batch
	if statuses {
		out = c.takeState(trigger, event.KindStatus)
		c.highSince = time.Time{}
	}
	if qrs {
		out = append(out, c.takeState(trigger, event.KindQR)...)
	}
	if messages {
		for _, kind := range []event.Kind{event.KindMessage, event.KindReceipt} {
			out = append(out, c.takeMessaging(kind, trigger)...)
		}
	}
	return out
}

// readiness is how ready a group is whose oldest item arrived at oldest (zero: none waits) with
// interval, at now; due when its size is reached.
func readiness(now, oldest time.Time, interval time.Duration, full bool) Readiness {
	switch {
	case full || !oldest.IsZero() && !now.Before(oldest.Add(interval)):
		return Due
	case !oldest.IsZero() && !now.Before(oldest.Add(interval/2)):
		return Ripe
	}
	return Young
}

// stateReadiness is the QR codes' and statuses' readiness at now.
func (c *Coalescer) stateReadiness(now time.Time) Readiness {
	full := len(c.waiting[event.KindQR]) >= c.size || len(c.waiting[event.KindStatus]) >= c.size
	return readiness(now, c.oldest(false), c.interval, full)
}

// messagingReadiness is the ready messages' and receipts' readiness at now.
func (c *Coalescer) messagingReadiness(now time.Time) Readiness {
	full := c.readyCount(event.KindMessage) >= c.size || c.readyCount(event.KindReceipt) >= c.size
	return readiness(now, c.oldest(true), c.messageInterval, full)
}

// takeState removes every waiting item of kind (QR codes or statuses), as batches.
func (c *Coalescer) takeState(trigger Trigger, kind event.Kind) []*Batch {
	m := c.waiting[kind]
	if len(m) == 0 {
		return nil
	}
	var out []*Batch
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
	return out
}

// takeMessaging removes the ready messages (or receipts) of kind and returns them as batches of
// at most size items. A session's items all go in one batch, in sequence order (the first size
// of them when more wait; the rest wait for that batch to be settled), so two batches never
// carry the same chat at once and Laravel receives each chat in order. Sessions go oldest first;
// within a batch items are ordered by session then sequence, the same items always making the
// same body (a replay under the same Idempotency-Key matches the stored request).
func (c *Coalescer) takeMessaging(kind event.Kind, trigger Trigger) []*Batch {
	m := c.waiting[kind]
	if len(m) == 0 {
		return nil
	}
	bySession := map[string][]*Item{}
	for _, it := range m {
		if c.ready(kind, it) {
			sid := it.Winner.Event.SessionID
			bySession[sid] = append(bySession[sid], it)
		}
	}
	type group struct {
		since time.Time
		sid   string
		items []*Item
	}
	groups := make([]group, 0, len(bySession))
	for sid, items := range bySession {
		slices.SortFunc(items, func(a, b *Item) int { return compareSequence(a.Winner.Event, b.Winner.Event) })
		g := group{sid: sid, items: items, since: items[0].Since}
		for _, it := range items {
			if it.Since.Before(g.since) {
				g.since = it.Since
			}
		}
		groups = append(groups, g)
	}
	slices.SortFunc(groups, func(a, b group) int {
		if c := a.since.Compare(b.since); c != 0 {
			return c
		}
		return strings.Compare(a.sid, b.sid)
	})
	var out []*Batch
	var chunk []*Item
	flush := func() {
		if len(chunk) == 0 {
			return
		}
		slices.SortFunc(chunk, func(a, b *Item) int {
			if c := strings.Compare(a.Winner.Event.SessionID, b.Winner.Event.SessionID); c != 0 {
				return c
			}
			return compareSequence(a.Winner.Event, b.Winner.Event)
		})
		out = append(out, &Batch{Kind: kind, Key: batchKey(kind, chunk), Items: chunk, Trigger: trigger})
		chunk = nil
	}
	for _, g := range groups {
		if len(chunk) == c.size {
			flush()
		}
		n := min(len(g.items), c.size-len(chunk))
		for _, it := range g.items[:n] {
			delete(m, waitingKey(it.Winner.Event))
		}
		chunk = append(chunk, g.items[:n]...)
	}
	flush()
	return out
}

// compareSequence orders two events of one session by sequence (their Version), then id.
func compareSequence(a, b event.Event) int {
	if a.Version != b.Version {
		if a.Version < b.Version {
			return -1
		}
		return 1
	}
	return strings.Compare(a.ID, b.ID)
}
