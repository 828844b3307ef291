package batch

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"wagate/gateway/event"
	"wagate/gateway/outbox"
)

// Metrics is the JSON answer of GET /metrics/batch: snake_case keys with units in their names,
// the delivery's counters, and the seed's three fields under their original names as aliases
// (qrBatchSize, statusBatchSize, timeSinceLastFlush in milliseconds).
type Metrics struct {
	QRWaitingItems     int `json:"qr_waiting_items"`
	StatusWaitingItems int `json:"status_waiting_items"`
	// MessageWaitingItems and ReceiptWaitingItems count incoming messages and receipts waiting
	// for their batch (never coalesced: one item each).
	MessageWaitingItems int   `json:"message_waiting_items"`
	ReceiptWaitingItems int   `json:"receipt_waiting_items"`
	SinceLastFlushMs    int64 `json:"time_since_last_flush_ms"`
	// The seed's names of the three fields above.
	QRBatchSize          int              `json:"qrBatchSize"`
	StatusBatchSize      int              `json:"statusBatchSize"`
	TimeSinceLastFlushMs int64            `json:"timeSinceLastFlush"`
	Pending              int64            `json:"pending"`
	OutboxPendingRead    int64            `json:"outbox_read_unacked"`
	OutboxCapacity       int64            `json:"outbox_capacity"`
	InFlight             int              `json:"in_flight"`
	InFlightItems        int              `json:"in_flight_items"`
	Sent                 int64            `json:"sent"`
	BatchesSent          int64            `json:"batches_sent"`
	Failed               int64            `json:"failed"`
	FailuresByStatus     map[string]int64 `json:"failures_by_status"`
	Retried              int64            `json:"retried"`
	// FirstAttempts counts the batches' first sends to Laravel (Retried the later ones);
	// RetriesHeld the retries the retry budget held back (each sent later, never dropped).
	FirstAttempts      int64            `json:"first_attempts"`
	RetriesHeld        int64            `json:"retries_held"`
	Expired            int64            `json:"expired"`
	Coalesced          int64            `json:"coalesced"`
	DeadLettered       int64            `json:"dead_lettered"`
	ItemErrors         int64            `json:"item_errors"`
	Splits             int64            `json:"splits"`
	EnqueueFailed      int64            `json:"enqueue_failed"`
	Breaker            string           `json:"breaker"`
	BreakerOpened      int64            `json:"breaker_opened"`
	BreakerPauses      int64            `json:"breaker_pauses"`
	PausedUntil        *time.Time       `json:"paused_until,omitempty"`
	Flushes            map[string]int64 `json:"flushes"`
	Outbox             outbox.Counters  `json:"outbox"`
	BatchSize          int              `json:"batch_size_items"`
	BatchIntervalMs    int64            `json:"batch_interval_ms"`
	PriorityIntervalMs int64            `json:"priority_interval_ms"`
	MessageIntervalMs  int64            `json:"message_interval_ms"`
	RedisError         string           `json:"redis_error,omitempty"`

	// AppliedDropped counts messages and receipts taken in (read, recovered, claimed) whose
	// items the message journal says Laravel applied, or a batch in flight here carries:
	// acknowledged away, not sent again (entries Redis brought back after losing their
	// settlement).
	AppliedDropped int64 `json:"applied_entries_dropped"`

	// AppendsOvertakenByLoss counts the appends of customers' messages and receipts that gave
	// way to the message journal's replay: Redis lost its data while they waited
	// (outbox.ErrOvertakenByLoss). They were accepted; the replay appends their items.
	AppendsOvertakenByLoss int64 `json:"appends_overtaken_by_loss"`
}

// Snapshot returns the current metrics; the outbox length comes from Redis (bounded by ctx).
func (d *Delivery) Snapshot(ctx context.Context) Metrics {
	now := d.clock.Now()
	d.mu.Lock()
	m := Metrics{
		QRBatchSize:          d.co.Waiting(event.KindQR),
		StatusBatchSize:      d.co.Waiting(event.KindStatus),
		MessageWaitingItems:  d.co.Waiting(event.KindMessage),
		ReceiptWaitingItems:  d.co.Waiting(event.KindReceipt),
		TimeSinceLastFlushMs: now.Sub(d.lastFlush).Milliseconds(),
		InFlight:             len(d.inflight),
		Coalesced:            d.co.Coalesced(),
	}
	for _, b := range d.inflight {
		m.InFlightItems += len(b.Items)
	}
	m.FailuresByStatus = make(map[string]int64, len(d.failures))
	for k, v := range d.failures {
		m.FailuresByStatus[k] = v
	}
	d.mu.Unlock()
	m.Sent, m.BatchesSent, m.Failed, m.Retried = d.sent.Load(), d.batchesSent.Load(), d.failed.Load(), d.retried.Load()
	m.Expired, m.DeadLettered, m.ItemErrors, m.EnqueueFailed = d.expired.Load(), d.deadLettered.Load(), d.itemErrors.Load(), d.enqueueFailed.Load()
	m.Splits, m.AppliedDropped, m.AppendsOvertakenByLoss = d.splits.Load(), d.appliedDropped.Load(), d.overtakenByLoss.Load()
	m.FirstAttempts, m.RetriesHeld = d.firstAttempts.Load(), d.retriesHeld.Load()
	m.Breaker, m.BreakerOpened, m.BreakerPauses = d.breaker.State().String(), d.breaker.Opened(), d.breaker.Pauses()
	if until := d.breaker.PausedUntil(); !until.IsZero() {
		m.PausedUntil = &until
	}
	m.Flushes = make(map[string]int64, len(Triggers))
	for i, t := range Triggers {
		m.Flushes[string(t)] = d.flushes[i].Load()
	}
	m.Outbox = d.ob.Counters()
	m.BatchSize, m.BatchIntervalMs, m.PriorityIntervalMs = d.cfg.BatchSize, d.cfg.BatchInterval.Milliseconds(), d.cfg.PriorityInterval.Milliseconds()
	m.MessageIntervalMs = d.cfg.MessageInterval.Milliseconds()
	m.QRWaitingItems, m.StatusWaitingItems, m.SinceLastFlushMs = m.QRBatchSize, m.StatusBatchSize, m.TimeSinceLastFlushMs
	st, err := d.ob.Stats(ctx)
	m.Pending, m.OutboxPendingRead, m.OutboxCapacity = st.Length, st.Pending, st.Capacity
	if err != nil {
		m.RedisError = err.Error()
	}
	return m
}

// MetricsHandler serves GET /metrics/batch as JSON.
func (d *Delivery) MetricsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		writeJSON(w, http.StatusOK, d.Snapshot(ctx))
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
