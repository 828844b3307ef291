package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"wagate/gateway/delivery/batch"
	"wagate/gateway/event"
)

// BatchSnapshotter is what the batch metrics read at each scrape: batch delivery
// (*batch.Delivery), or a fixed snapshot in tests.
type BatchSnapshotter interface {
	Snapshot(ctx context.Context) batch.Metrics
}

// batchSeries are the wagate_batch_* and wagate_outbox_* series read from the snapshot, with their
// label (none when empty).
var batchSeries = []struct{ name, label, help string }{
	{"wagate_batch_waiting_items", "kind", "Coalesced items waiting to be flushed, by kind."},
	{"wagate_batch_seconds_since_last_flush", "", "Seconds since the last flush."},
	{"wagate_outbox_length", "", "Undelivered entries in the outbox stream."},
	{"wagate_outbox_read_unacked", "", "Outbox entries read by a consumer and not yet acknowledged."},
	{"wagate_outbox_capacity", "", "Configured bound of the outbox."},
	{"wagate_batch_in_flight", "", "Batches sent or awaiting a retry."},
	{"wagate_batch_items_sent_total", "", "Items Laravel acknowledged with a 2xx."},
	{"wagate_batch_batches_sent_total", "", "Batches Laravel acknowledged with a 2xx."},
	{"wagate_batch_send_failures_total", "status", "Failed batch send attempts by status: an HTTP status, network, undecodable (a 2xx body that cannot be decoded) or unaccounted (a 2xx that does not account for every item). Alert on it: none of these dead-letters."},
	{"wagate_batch_first_attempts_total", "", "Batches sent to Laravel for the first time (each batch's first attempt)."},
	{"wagate_batch_retries_total", "", "Batch send attempts after the first."},
	{"wagate_batch_retries_held_total", "", "Retries the retry budget held back (Laravel's load: at most retry-budget-percent of the first attempts plus retry-budget-min-per-second); each waits and is sent later, never dropped."},
	{"wagate_batch_expired_total", "", "Batches whose delivery budget ran out (items re-batched, not dropped)."},
	{"wagate_batch_coalesced_total", "", "Outbox entries superseded by a newer version of the same session and kind."},
	{"wagate_batch_dead_lettered_total", "", "Outbox entries moved to the dead-letter stream."},
	{"wagate_outbox_enqueue_failed_total", "", "Events the outbox refused (full past its deadline, Redis unavailable, or an invalid event)."},
	{"wagate_outbox_appends_overtaken_by_loss_total", "", "Appends of customers' messages and receipts that gave way to the message journal's replay: Redis lost its data while they waited for room or for Redis, and the replay appends their items (accepted, not refused)."},
	{"wagate_batch_breaker_state", "state", "Circuit breaker state: 1 for the current state (closed, half-open, open), 0 for the others."},
	{"wagate_batch_breaker_opened_total", "", "Times the circuit breaker opened."},
	{"wagate_batch_paused_total", "", "Times a Retry-After paused every send to Laravel."},
	{"wagate_batch_flushes_total", "trigger", "Flushes by trigger."},
}

// breakerStates are the circuit breaker's states as the snapshot names them (gobreaker's).
var breakerStates = []string{"closed", "half-open", "open"}

// breakerGauge is wagate_batch_breaker_state by its state label: every state present, 1 for the
// current one (so `wagate_batch_breaker_state{state="open"} == 1` selects open breakers).
func breakerGauge(current string) map[string]float64 {
	out := make(map[string]float64, len(breakerStates))
	for _, st := range breakerStates {
		out[st] = 0
		if st == current {
			out[st] = 1
		}
	}
	return out
}

// batchCollector exposes batch delivery's snapshot under wagate_ names.
type batchCollector struct {
	d     BatchSnapshotter
	descs map[string]*prometheus.Desc
}

// RegisterBatch adds the batch delivery's series (wagate_batch_*, wagate_outbox_*), read from d's
// snapshot at each scrape (at most 1 s of Redis per scrape). Call it once, in batch mode.
func (m *Metrics) RegisterBatch(d BatchSnapshotter) error {
	c := &batchCollector{d: d, descs: map[string]*prometheus.Desc{}}
	for _, s := range batchSeries {
		var labels []string
		if s.label != "" {
			labels = []string{s.label}
		}
		c.descs[s.name] = prometheus.NewDesc(s.name, s.help, labels, nil)
	}
	return m.Registry.Register(c)
}

// BatchSizes returns the hook batch delivery calls with the kind and item count of every batch
// Laravel acknowledged (batch.Options.BatchSent): wagate_batch_size_items, registered here. Call
// it once, in batch mode.
func (m *Metrics) BatchSizes() func(kind event.Kind, items int) {
	hist := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "wagate_batch_size_items",
		Help:    "Items per delivered batch.",
		Buckets: []float64{1, 2, 5, 10, 20, 30, 40, 50, 100, 200, 500},
	}, []string{"kind"})
	m.Registry.MustRegister(hist)
	return func(kind event.Kind, items int) { hist.WithLabelValues(string(kind)).Observe(float64(items)) }
}

// Describe implements prometheus.Collector.
func (c *batchCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *batchCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	m := c.d.Snapshot(ctx)
	g := func(name string, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.GaugeValue, v, labels...)
	}
	ct := func(name string, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.CounterValue, float64(v), labels...)
	}
	g("wagate_batch_waiting_items", float64(m.QRBatchSize), "qr")
	g("wagate_batch_waiting_items", float64(m.StatusBatchSize), "status")
	g("wagate_batch_seconds_since_last_flush", float64(m.TimeSinceLastFlushMs)/1000)
	g("wagate_outbox_length", float64(m.Pending))
	g("wagate_outbox_read_unacked", float64(m.OutboxPendingRead))
	g("wagate_outbox_capacity", float64(m.OutboxCapacity))
	g("wagate_batch_in_flight", float64(m.InFlight))
	ct("wagate_batch_items_sent_total", m.Sent)
	ct("wagate_batch_batches_sent_total", m.BatchesSent)
	for status, n := range m.FailuresByStatus {
		ct("wagate_batch_send_failures_total", n, status)
	}
	ct("wagate_batch_first_attempts_total", m.FirstAttempts)
	ct("wagate_batch_retries_total", m.Retried)
	ct("wagate_batch_retries_held_total", m.RetriesHeld)
	ct("wagate_batch_expired_total", m.Expired)
	ct("wagate_batch_coalesced_total", m.Coalesced)
	ct("wagate_batch_dead_lettered_total", m.DeadLettered)
	ct("wagate_outbox_enqueue_failed_total", m.EnqueueFailed)
	ct("wagate_outbox_appends_overtaken_by_loss_total", m.AppendsOvertakenByLoss)
	for state, v := range breakerGauge(m.Breaker) {
		g("wagate_batch_breaker_state", v, state)
	}
	ct("wagate_batch_breaker_opened_total", m.BreakerOpened)
	ct("wagate_batch_paused_total", m.BreakerPauses)
	for _, t := range batch.Triggers {
		ct("wagate_batch_flushes_total", m.Flushes[string(t)], string(t))
	}
}
