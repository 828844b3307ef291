package fakelaravel

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the Prometheus series of one Server, on a registry of its own.
type metrics struct {
	reg               *prometheus.Registry
	http              http.Handler
	requests          *prometheus.CounterVec
	items             *prometheus.CounterVec
	replayed          *prometheus.CounterVec
	queueWait         *prometheus.HistogramVec
	service           *prometheus.HistogramVec
	authFailures      prometheus.Counter
	signatureFailures prometheus.Counter
	lostResponses     prometheus.Counter
	injectedErrors    prometheus.Counter
	injectedFaults    *prometheus.CounterVec
	withheldItems     *prometheus.CounterVec
}

func newMetrics(workers workerView, isDown func() bool) *metrics {
	secs := make([]float64, len(histogramBoundsMS))
	for i, ms := range histogramBoundsMS {
		secs[i] = ms / 1000
	}
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fakelaravel_requests_total", Help: "Requests to the Laravel contract endpoints by endpoint and HTTP status.",
		}, []string{"endpoint", "code"}),
		items: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fakelaravel_items_total", Help: "Items received by endpoint and result (updated, stale, failed).",
		}, []string{"endpoint", "result"}),
		replayed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fakelaravel_replayed_batches_total", Help: "Batches answered from a stored Idempotency-Key without applying them again.",
		}, []string{"endpoint"}),
		queueWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "fakelaravel_queue_wait_seconds", Help: "Time requests waited in the FPM backlog for a worker.", Buckets: secs,
		}, []string{"endpoint"}),
		service: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "fakelaravel_service_seconds", Help: "Time requests spent on an FPM worker.", Buckets: secs,
		}, []string{"endpoint"}),
		authFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fakelaravel_auth_failures_total", Help: "Requests rejected for a missing or wrong bearer token.",
		}),
		signatureFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fakelaravel_signature_failures_total", Help: "Requests rejected for a missing, wrong or expired body signature.",
		}),
		lostResponses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fakelaravel_lost_responses_total", Help: "Applied writes whose response was dropped by the lost-response fault.",
		}),
		injectedErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fakelaravel_injected_errors_total", Help: "Answers produced by the error-rate fault.",
		}),
		injectedFaults: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fakelaravel_injected_faults_total", Help: "Requests changed by an injected fault, by kind and detail (the status of a status fault, the mode of a lost response).",
		}, []string{"kind", "detail"}),
		withheldItems: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fakelaravel_withheld_items_total", Help: "Batch items item faults kept from being applied, by kind (refuse_items: named errors; unaccounted_failures: counted only).",
		}, []string{"kind"}),
	}
	m.reg.MustRegister(m.requests, m.items, m.replayed, m.queueWait, m.service,
		m.authFailures, m.signatureFailures, m.lostResponses, m.injectedErrors, m.injectedFaults, m.withheldItems,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "fakelaravel_workers", Help: "FPM workers (pm.max_children)."},
			func() float64 { return float64(workers.count()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "fakelaravel_workers_busy", Help: "FPM workers serving a request now."},
			func() float64 { return float64(workers.busyNow()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "fakelaravel_queue_length", Help: "Requests waiting in the FPM backlog."},
			func() float64 { return float64(workers.queuedNow()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "fakelaravel_worker_busy_seconds_total", Help: "Worker time spent serving requests."},
			func() float64 { return float64(workers.busyNanosTotal()) / 1e9 }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "fakelaravel_down", Help: "1 while a down window refuses connections."},
			func() float64 {
				if isDown() {
					return 1
				}
				return 0
			}),
	)
	m.http = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	return m
}

func (m *metrics) observe(r record) {
	m.requests.WithLabelValues(r.endpoint, strconv.Itoa(r.status)).Inc()
	if r.updated > 0 {
		m.items.WithLabelValues(r.endpoint, "updated").Add(float64(r.updated))
	}
	if r.stale > 0 {
		m.items.WithLabelValues(r.endpoint, "stale").Add(float64(r.stale))
	}
	if r.failed > 0 {
		m.items.WithLabelValues(r.endpoint, "failed").Add(float64(r.failed))
	}
	if r.replayed {
		m.replayed.WithLabelValues(r.endpoint).Inc()
	}
	if r.served {
		if !r.queueHidden {
			m.queueWait.WithLabelValues(r.endpoint).Observe(r.queueWait.Seconds())
		}
		m.service.WithLabelValues(r.endpoint).Observe(r.service.Seconds())
	}
}

func (m *metrics) handler() http.Handler { return m.http }
