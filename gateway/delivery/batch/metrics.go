package batch

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"

	"wagate/gateway/event"
	"wagate/gateway/outbox"
)

// batchSizeObserver records the size of every delivered batch per kind.
type batchSizeObserver struct {
	hist *prometheus.HistogramVec
}

func newBatchSizeObserver() batchSizeObserver {
	return batchSizeObserver{hist: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "wagate_batch_size_items",
		Help:    "Items per delivered batch.",
		Buckets: []float64{1, 2, 5, 10, 20, 30, 40, 50, 100, 200, 500},
	}, []string{"kind"})}
}

func (o batchSizeObserver) observe(k event.Kind, n int) {
	o.hist.WithLabelValues(string(k)).Observe(float64(n))
}

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
	Expired              int64            `json:"expired"`
	Coalesced            int64            `json:"coalesced"`
	DeadLettered         int64            `json:"dead_lettered"`
	ItemErrors           int64            `json:"item_errors"`
	Splits               int64            `json:"splits"`
	EnqueueFailed        int64            `json:"enqueue_failed"`
	Breaker              string           `json:"breaker"`
	BreakerOpened        int64            `json:"breaker_opened"`
	BreakerPauses        int64            `json:"breaker_pauses"`
	PausedUntil          *time.Time       `json:"paused_until,omitempty"`
	Flushes              map[string]int64 `json:"flushes"`
	Outbox               outbox.Counters  `json:"outbox"`
	BatchSize            int              `json:"batch_size_items"`
	BatchIntervalMs      int64            `json:"batch_interval_ms"`
	PriorityIntervalMs   int64            `json:"priority_interval_ms"`
	MessageIntervalMs    int64            `json:"message_interval_ms"`
	RedisError           string           `json:"redis_error,omitempty"`
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
	m.Splits = d.splits.Load()
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

// DeadLettersHandler serves the admin view of the dead-letter stream as JSON, newest first;
// ?limit=N (default 100, at most 1000).
func (d *Delivery) DeadLettersHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit := int64(100)
		if s := r.URL.Query().Get("limit"); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n <= 0 {
				writeJSON(w, http.StatusBadRequest, map[string]string{"message": "limit must be a positive integer"})
				return
			}
			limit = min(n, 1000)
		}
		dls, err := d.ob.DeadLetters(r.Context(), limit)
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"message": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"dead_letters": dls, "count": len(dls)})
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// breakerGauge is wagate_batch_breaker_state by its state label: every state present, 1 for the
// current one (so `wagate_batch_breaker_state{state="open"} == 1` selects open breakers).
func breakerGauge(current gobreaker.State) map[string]float64 {
	out := make(map[string]float64, 3)
	for _, st := range []gobreaker.State{gobreaker.StateClosed, gobreaker.StateHalfOpen, gobreaker.StateOpen} {
		out[st.String()] = 0
		if st == current {
			out[st.String()] = 1
		}
	}
	return out
}

// Collector exposes the delivery's metrics to Prometheus under wagate_ names.
type Collector struct {
	d     *Delivery
	descs map[string]*prometheus.Desc
}

var collectorSeries = []struct{ name, help string }{
	{"wagate_batch_waiting_items", "Coalesced items waiting to be flushed, by kind."},
	{"wagate_batch_seconds_since_last_flush", "Seconds since the last flush."},
	{"wagate_outbox_length", "Undelivered entries in the outbox stream."},
	{"wagate_outbox_read_unacked", "Outbox entries read by a consumer and not yet acknowledged."},
	{"wagate_outbox_capacity", "Configured bound of the outbox."},
	{"wagate_batch_in_flight", "Batches sent or awaiting a retry."},
	{"wagate_batch_items_sent_total", "Items Laravel acknowledged with a 2xx."},
	{"wagate_batch_batches_sent_total", "Batches Laravel acknowledged with a 2xx."},
	{"wagate_batch_send_failures_total", "Failed batch send attempts by status: an HTTP status, network, undecodable (a 2xx body that cannot be decoded) or unaccounted (a 2xx that does not account for every item). Alert on it: none of these dead-letters."},
	{"wagate_batch_retries_total", "Batch send attempts after the first."},
	{"wagate_batch_expired_total", "Batches whose delivery budget ran out (items re-batched, not dropped)."},
	{"wagate_batch_coalesced_total", "Outbox entries superseded by a newer version of the same session and kind."},
	{"wagate_batch_dead_lettered_total", "Outbox entries moved to the dead-letter stream."},
	{"wagate_outbox_enqueue_failed_total", "Events refused because the outbox stayed full past its deadline."},
	{"wagate_batch_breaker_state", "Circuit breaker state: 1 for the current state (closed, half-open, open), 0 for the others."},
	{"wagate_batch_breaker_opened_total", "Times the circuit breaker opened."},
	{"wagate_batch_paused_total", "Times a Retry-After paused every send to Laravel."},
	{"wagate_batch_flushes_total", "Flushes by trigger."},
}

// NewCollector returns a Prometheus collector for d.
func NewCollector(d *Delivery) *Collector {
	c := &Collector{d: d, descs: map[string]*prometheus.Desc{}}
	for _, s := range collectorSeries {
		var labels []string
		switch s.name {
		case "wagate_batch_waiting_items":
			labels = []string{"kind"}
		case "wagate_batch_flushes_total":
			labels = []string{"trigger"}
		case "wagate_batch_send_failures_total":
			labels = []string{"status"}
		case "wagate_batch_breaker_state":
			labels = []string{"state"}
		}
		c.descs[s.name] = prometheus.NewDesc(s.name, s.help, labels, nil)
	}
	return c
}

// Register registers the collector and the batch size histogram on reg.
func (d *Delivery) Register(reg prometheus.Registerer) error {
	if err := reg.Register(NewCollector(d)); err != nil {
		return err
	}
	return reg.Register(d.batchSizes.hist)
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
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
	ct("wagate_batch_retries_total", m.Retried)
	ct("wagate_batch_expired_total", m.Expired)
	ct("wagate_batch_coalesced_total", m.Coalesced)
	ct("wagate_batch_dead_lettered_total", m.DeadLettered)
	ct("wagate_outbox_enqueue_failed_total", m.EnqueueFailed)
	for state, v := range breakerGauge(c.d.breaker.State()) {
		g("wagate_batch_breaker_state", v, state)
	}
	ct("wagate_batch_breaker_opened_total", m.BreakerOpened)
	ct("wagate_batch_paused_total", m.BreakerPauses)
	for _, t := range Triggers {
		ct("wagate_batch_flushes_total", m.Flushes[string(t)], string(t))
	}
}
