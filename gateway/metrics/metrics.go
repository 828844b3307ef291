// Package metrics owns the gateway's Prometheus metrics (all named wagate_*): sessions by status,
// events by kind and priority, event delivery failures and drops, Laravel requests by endpoint
// and status with their latency, the REST API's latency by route, and wagate_build_info. It hands
// out the hooks the other packages call (a laravel.Observer, session.Hooks, an HTTP middleware),
// so those packages do not import Prometheus.
//
// One instrumentation style for the gateway: this package owns every wagate_* series (names, help,
// labels, buckets) and registers them; a component reports through a hook or an interface it
// declares (session.Hooks, laravel.Observer, the API middleware, a counter or snapshot it
// exposes) and does not import Prometheus: the cache's and batch delivery's series are read from
// their snapshots at each scrape (RegisterCache in cache.go, RegisterBatch in batch.go), and batch
// delivery reports each batch's size through batch.Options.BatchSent (BatchSizes).
//
// Label values are bounded: an HTTP method outside the standard ones is recorded as "other" (a
// client cannot create series by inventing methods), and the failure and drop counters operators
// alert on exist at 0 from the start, so rate() and absent() work before the first failure.
package metrics

import (
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"wagate/gateway/event"
	"wagate/gateway/laravel"
	"wagate/gateway/session"
	"wagate/internal/buildinfo"
)

// OtherMethod is the method label of API requests with a non-standard HTTP method.
const OtherMethod = "other"

// startingSeries are the label sets of the failure and drop counters created at 0 by New:
// every event kind can fail delivery or be dropped at shutdown; only QR codes are dropped from a
// full queue (an older code superseded by a newer one, session.Manager).
var startingSeries = struct {
	failedKinds []event.Kind
	dropped     [][2]string // kind, reason
}{
	failedKinds: []event.Kind{event.KindQR, event.KindStatus, event.KindMessage, event.KindReceipt},
	dropped: [][2]string{
		{string(event.KindQR), "queue_full"},
		{string(event.KindQR), "shutdown"},
		{string(event.KindStatus), "shutdown"},
	},
}

// Metrics is the gateway's metric set and its registry.
type Metrics struct {
	// Registry holds every wagate_* metric plus the Go and process collectors. Other packages
	// (batch delivery, cache) register theirs here too.
	Registry *prometheus.Registry

	events          *prometheus.CounterVec
	deliveryFailed  *prometheus.CounterVec
	eventsDropped   *prometheus.CounterVec
	laravelRequests *prometheus.CounterVec
	laravelDuration *prometheus.HistogramVec
	apiDuration     *prometheus.HistogramVec
	// apiObservers holds apiDuration's observers bound to their labels (apiKey -> Observer), so
	// a request does not hash and look up three label values; routes, methods and codes are few.
	apiObservers sync.Map
	// msgs counts the messages and receipts Laravel acknowledged (messages.go).
	msgs messageMetrics
}

// apiKey identifies one apiDuration series.
type apiKey struct {
	route, method string
	code          int
}

// New creates the metric set in a fresh registry.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wagate_events_total",
			Help: "Session events emitted (QR codes, status changes, incoming messages and receipts), by kind and priority.",
		}, []string{"kind", "priority"}),
		deliveryFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wagate_event_delivery_failures_total",
			Help: "Events the delivery did not accept, by kind.",
		}, []string{"kind"}),
		eventsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wagate_events_dropped_total",
			Help: "Events dropped before delivery, by kind and reason (queue_full: an old QR code behind a slow delivery; superseded: a QR code a later event of its session made moot before the delivery took it; shutdown; not_delivered_in_mode: a message or receipt the mode's delivery does not carry).",
		}, []string{"kind", "reason"}),
		laravelRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wagate_laravel_requests_total",
			Help: "Requests to Laravel by endpoint and HTTP status (\"error\" when no answer arrived).",
		}, []string{"endpoint", "status"}),
		laravelDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wagate_laravel_request_duration_seconds",
			Help:    "Latency of requests to Laravel by endpoint.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"endpoint"}),
		apiDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wagate_api_request_duration_seconds",
			Help:    "Latency of the gateway's REST API by route, method and status code.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route", "method", "code"}),
	}
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "wagate_build_info",
		Help: "Always 1; the labels say which build of the gateway runs (version, VCS revision, Go version).",
	}, []string{"version", "revision", "goversion"})
	buildInfo.WithLabelValues(buildinfo.Version, buildinfo.RevisionShort(), runtime.Version()).Set(1)
	for _, k := range startingSeries.failedKinds {
		m.deliveryFailed.WithLabelValues(string(k))
	}
	for _, kr := range startingSeries.dropped {
		m.eventsDropped.WithLabelValues(kr[0], kr[1])
	}
	m.msgs = newMessageMetrics()
	reg.MustRegister(m.msgs.collectors()...)
	reg.MustRegister(m.events, m.deliveryFailed, m.eventsDropped, m.laravelRequests, m.laravelDuration, m.apiDuration, buildInfo,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), newSchedLatencyCollector())
	return m
}

// MethodLabel is the method label of an API request: the standard methods as they are, anything
// else OtherMethod.
func MethodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodPost, http.MethodDelete, http.MethodHead, http.MethodPut, http.MethodPatch,
		http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return OtherMethod
}

// Handler serves the registry in the Prometheus text format, uncompressed even to a scraper that
// offers gzip: compressing the ~30 KB answer cost more CPU than gathering and encoding it
// (BenchmarkScrape), on every scrape, to save bytes on a loopback or cluster network.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry, DisableCompression: true})
}

// LaravelObserver returns the hook the Laravel client calls after every request.
func (m *Metrics) LaravelObserver() laravel.Observer {
	return func(endpoint string, status int, d time.Duration) {
		code := "error"
		if status > 0 {
			code = strconv.Itoa(status)
		}
		m.laravelRequests.WithLabelValues(endpoint, code).Inc()
		m.laravelDuration.WithLabelValues(endpoint).Observe(d.Seconds())
	}
}

// SessionHooks returns the session manager's metric hooks.
func (m *Metrics) SessionHooks() session.Hooks {
	return session.Hooks{
		EventEmitted: func(ev event.Event) {
			m.events.WithLabelValues(string(ev.Kind), ev.Priority.String()).Inc()
		},
		DeliveryFailed: func(ev event.Event, _ error) {
			m.deliveryFailed.WithLabelValues(string(ev.Kind)).Inc()
		},
		EventDropped: func(ev event.Event, reason string) {
			m.eventsDropped.WithLabelValues(string(ev.Kind), reason).Inc()
		},
	}
}

// ObserveAPI records one API request. A non-standard method is recorded as OtherMethod.
func (m *Metrics) ObserveAPI(route, method string, code int, d time.Duration) {
	method = MethodLabel(method)
	k := apiKey{route, method, code}
	o, ok := m.apiObservers.Load(k)
	if !ok {
		o, _ = m.apiObservers.LoadOrStore(k, m.apiDuration.WithLabelValues(route, method, strconv.Itoa(code)))
	}
	o.(prometheus.Observer).Observe(d.Seconds())
}

// SessionCounter reports how many sessions are in each status and how many are logged in
// (session.Manager.Counts, which keeps them on each transition: a scrape walks no session).
type SessionCounter func() (byStatus map[laravel.Status]int, live int)

// RegisterSessions adds wagate_sessions{status} and wagate_sessions_live, read at scrape time.
func (m *Metrics) RegisterSessions(count SessionCounter) {
	m.Registry.MustRegister(&sessionCollector{count: count})
}

var (
	sessionsDesc = prometheus.NewDesc("wagate_sessions", "Sessions by last reported status.", []string{"status"}, nil)
	liveDesc     = prometheus.NewDesc("wagate_sessions_live", "Sessions logged in to WhatsApp: their connection reported its login and has not ended since.", nil, nil)
)

type sessionCollector struct{ count SessionCounter }

// Describe implements prometheus.Collector.
func (c *sessionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- sessionsDesc
	ch <- liveDesc
}

// Collect implements prometheus.Collector: it reads the session counts at scrape time.
func (c *sessionCollector) Collect(ch chan<- prometheus.Metric) {
	byStatus, live := c.count()
	for _, st := range laravel.Statuses {
		ch <- prometheus.MustNewConstMetric(sessionsDesc, prometheus.GaugeValue, float64(byStatus[st]), string(st))
	}
	ch <- prometheus.MustNewConstMetric(liveDesc, prometheus.GaugeValue, float64(live))
}
