package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"wagate/gateway/delivery"
	"wagate/gateway/event"
)

// messageKinds are the event kinds of customers' traffic: incoming messages and the receipts of
// sent messages. They arrive counted in wagate_events_total{kind}; what Laravel acknowledged is
// counted below.
var messageKinds = []event.Kind{event.KindMessage, event.KindReceipt}

// messageMetrics count the messages and receipts Laravel acknowledged and their delay.
type messageMetrics struct {
	delivered *prometheus.CounterVec
	delay     *prometheus.HistogramVec
}

func newMessageMetrics() messageMetrics {
	mm := messageMetrics{
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wagate_messages_delivered_total",
			Help: "Incoming messages and receipts Laravel acknowledged, by kind (message, receipt).",
		}, []string{"kind"}),
		delay: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wagate_message_delivery_seconds",
			Help:    "Time from the gateway receiving a message or receipt from WhatsApp to Laravel acknowledging it, by kind.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 1.5, 2, 3, 5, 10, 30, 60},
		}, []string{"kind"}),
	}
	for _, k := range messageKinds {
		mm.delivered.WithLabelValues(string(k))
		mm.delay.WithLabelValues(string(k))
	}
	return mm
}

func (mm messageMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{mm.delivered, mm.delay}
}

// Delivered records an event Laravel acknowledged at now: a message or receipt counts in
// wagate_messages_delivered_total and its delay since ev.Time (when the gateway received it) in
// wagate_message_delivery_seconds; QR codes and statuses are not counted here.
func (m *Metrics) Delivered(ev *event.Event, now time.Time) {
	if ev.Kind != event.KindMessage && ev.Kind != event.KindReceipt {
		return
	}
	m.msgs.delivered.WithLabelValues(string(ev.Kind)).Inc()
	if !ev.Time.IsZero() {
		m.msgs.delay.WithLabelValues(string(ev.Kind)).Observe(max(now.Sub(ev.Time), 0).Seconds())
	}
}

// ObserveDelivered wraps a delivery whose Deliver returns once Laravel acknowledged the event
// (legacy mode) so every acknowledged message and receipt is recorded by Delivered. Batch mode,
// which acknowledges later, calls Delivered itself (batch.Options.Delivered).
func (m *Metrics) ObserveDelivered(d delivery.Delivery) delivery.Delivery {
	return observedDelivery{Delivery: d, m: m}
}

type observedDelivery struct {
	delivery.Delivery
	m *Metrics
}

// Accepts and DeliversDurably pass the wrapped delivery's answers on: without them the wrapper
// would hide them (an embedded interface has only its own methods), and the session layer would
// drop every message and receipt of legacy mode as not delivered in that mode.
func (o observedDelivery) Accepts(k event.Kind) bool { return delivery.Accepts(o.Delivery, k) }
func (o observedDelivery) DeliversDurably() bool     { return delivery.Durable(o.Delivery) }

func (o observedDelivery) Deliver(ctx context.Context, ev event.Event) error {
	err := o.Delivery.Deliver(ctx, ev)
	if err == nil {
		o.m.Delivered(&ev, time.Now())
	}
	return err
}
