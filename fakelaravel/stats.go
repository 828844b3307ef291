package fakelaravel

import (
	"maps"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Endpoint names used in Stats, State and the metrics' "endpoint" label.
const (
	EndpointQR          = "qr"           // POST /api/qr
	EndpointStatus      = "status"       // POST /api/whatsapp/status
	EndpointSession     = "session"      // GET /api/whatsapp/sessions/{id}
	EndpointQRBatch     = "qr_batch"     // POST /api/qr/batch
	EndpointStatusBatch = "status_batch" // POST /api/whatsapp/status/batch
	EndpointOther       = "other"        // anything else under /api
)

// Endpoints lists every endpoint name in Stats.
var Endpoints = []string{EndpointQR, EndpointStatus, EndpointSession, EndpointQRBatch, EndpointStatusBatch,
	EndpointMessage, EndpointReceipt, EndpointMessageBatch, EndpointReceiptBatch, EndpointOther}

// histogramBoundsMS are the upper bounds (ms) of the latency histograms' buckets.
var histogramBoundsMS = []float64{0.5, 1, 2, 5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 2000, 5000, 10000, 30000, 60000, 120000}

// Stats is the answer of GET /_fake/stats.
type Stats struct {
	StartedAt     time.Time       `json:"started_at"`
	UptimeSeconds float64         `json:"uptime_seconds"`
	Capacity      CalibratedModel `json:"capacity"`
	// Upstream is the real Laravel app's URL when the server is its measuring front (Capacity is
	// then zero: the real app's capacity is its own).
	Upstream  string                   `json:"upstream,omitempty"`
	Workers   WorkerStats              `json:"workers"`
	Endpoints map[string]EndpointStats `json:"endpoints"`
	// AuthFailures counts 401s for a missing or wrong bearer token.
	AuthFailures int64 `json:"auth_failures"`
	// SignatureFailures counts 401s for a missing, wrong or expired body signature.
	SignatureFailures int64 `json:"signature_failures"`
	// LostResponses counts applied writes whose response was dropped by the lost-response fault.
	LostResponses int64 `json:"lost_responses"`
	// InjectedErrors counts answers produced by the error-rate fault and status windows.
	InjectedErrors int64 `json:"injected_errors"`
	// Injected counts every request a fault changed, by InjectedKey: "status:503",
	// "status:307", "latency", "down", "lost_response:close", "lost_response:empty",
	// "garbage_body", "unaccounted_failures", "refuse_items".
	Injected map[string]int64 `json:"injected"`
	// RefusedItems counts items refused by refuse_items windows (by session: Refusals).
	RefusedItems int64 `json:"refused_items"`
	// UnaccountedItems counts batch items left unapplied and unnamed by unaccounted_failures
	// windows.
	UnaccountedItems int64 `json:"unaccounted_items"`
	// Down reports whether a down window is in effect now.
	Down bool `json:"down"`
}

// InjectedKey is the key of Stats.Injected for a fault kind and its detail (the status of a
// status window, the mode of a lost response; empty for the others).
func InjectedKey(kind FaultKind, detail string) string {
	if detail == "" {
		return string(kind)
	}
	return string(kind) + ":" + detail
}

// MaxRefusedItemsListed bounds Refusals.Items; the counts go on beyond it.
const MaxRefusedItemsListed = 100_000

// Refusals is the answer of GET /_fake/refusals: every item (batch item or legacy write) refused
// by a refuse_items window since start (or the last reset). A replayed batch refuses nothing
// again.
type Refusals struct {
	// Total counts refused items; BySession the same per session id.
	Total     int64            `json:"total"`
	BySession map[string]int64 `json:"by_session"`
	// Items lists the refused items in order, at most MaxRefusedItemsListed (Truncated then).
	Items     []RefusedItem `json:"items"`
	Truncated bool          `json:"truncated"`
}

// RefusedItem is one refused batch item.
type RefusedItem struct {
	SessionID string `json:"session_id"`
	// Endpoint is EndpointStatusBatch or EndpointQRBatch, or EndpointStatus or EndpointQR for a
	// legacy write (whose Version is 0: legacy writes have none).
	Endpoint string `json:"endpoint"`
	Version  int64  `json:"version"`
}

// WorkerStats describes the FPM worker pool.
type WorkerStats struct {
	Workers int `json:"workers"`
	// Busy is the number of workers serving a request now; Queued the requests in the backlog.
	Busy   int64 `json:"busy"`
	Queued int   `json:"queued"`
	// Utilization is busy worker time over Workers x uptime, in [0, 1].
	Utilization float64 `json:"utilization"`
	// BusySeconds is the total worker time spent serving requests.
	BusySeconds float64 `json:"busy_seconds"`
	// Abandoned counts requests FPM finished after nginx had already answered 504.
	Abandoned int64 `json:"abandoned"`
	// Series has one point per second (sampled every 100 ms) for the last SeriesSeconds seconds.
	Series []WorkerPoint `json:"series"`
}

// WorkerPoint is one second of the worker pool, from samples taken every 100 ms.
type WorkerPoint struct {
	Unix int64 `json:"t"`
	// BusyMean is the mean number of busy workers; Utilization that over Workers.
	BusyMean    float64 `json:"busy_mean"`
	Utilization float64 `json:"utilization"`
	// QueuedMax is the longest backlog seen in the second.
	QueuedMax int `json:"queued_max"`
}

// workerSlot accumulates the samples of one second.
type workerSlot struct {
	unix      int64
	busySum   int64
	samples   int
	queuedMax int
}

// EndpointStats are the counters of one endpoint.
type EndpointStats struct {
	Requests int64 `json:"requests"`
	// Items counts batch items (1 per legacy write) in requests that reached the application.
	Items int64 `json:"items"`
	// Updated, Stale and Failed count items applied, ignored as stale and rejected.
	Updated int64 `json:"updated"`
	Stale   int64 `json:"stale"`
	Failed  int64 `json:"failed"`
	// Replayed counts batches answered from processed_batches without applying them again.
	Replayed int64 `json:"replayed"`
	// StatusCodes counts answers by HTTP status ("200", "422", "502", ...).
	StatusCodes map[string]int64 `json:"status_codes"`
	// QueueWait is the time requests waited for a worker; Service the time on a worker.
	QueueWait Histogram `json:"queue_wait"`
	Service   Histogram `json:"service"`
	// Response is the time from a request's arrival to its answer, for every request (502s, 504s
	// and injected faults included): what the caller waits, less the network. In front of a real
	// app (Upstream) it is the app's answer time, whose queueing is not visible apart.
	Response Histogram `json:"response"`
	// Series has one point per second for the last SeriesSeconds seconds, oldest first.
	Series []SecondPoint `json:"series"`
}

// SecondPoint is one second of an endpoint's activity.
type SecondPoint struct {
	Unix     int64 `json:"t"`
	Requests int64 `json:"requests"`
	Items    int64 `json:"items"`
	OK       int64 `json:"ok"`        // 2xx
	Client   int64 `json:"client"`    // 4xx
	Server   int64 `json:"server"`    // 5xx
	Rejected int64 `json:"rejected"`  // 502 from a full backlog
	TimedOut int64 `json:"timed_out"` // 504
}

// Histogram is a latency histogram in milliseconds. P50MS, P90MS and P99MS come from an HDR
// histogram of microseconds with 3 significant digits (exact to 0.1%), which HDR carries
// (hdrhistogram-go's V2 compressed encoding, base64) so that readers can take exact differences
// between two snapshots (DecodeHDR). BoundsMS and Counts are the coarse fixed buckets of the
// Prometheus histograms: Counts[i] counts values <= BoundsMS[i] (and above the previous bound);
// the last element of Counts counts the rest.
type Histogram struct {
	BoundsMS []float64 `json:"bounds_ms"`
	Counts   []int64   `json:"counts"`
	Count    int64     `json:"count"`
	SumMS    float64   `json:"sum_ms"`
	MaxMS    float64   `json:"max_ms"`
	P50MS    float64   `json:"p50_ms"`
	P90MS    float64   `json:"p90_ms"`
	P99MS    float64   `json:"p99_ms"`
	HDR      string    `json:"hdr,omitempty"`
}

// HDR histograms record microseconds from 1 µs to an hour with 3 significant digits.
const (
	hdrLowestUS  = 1
	hdrHighestUS = int64(time.Hour / time.Microsecond)
	hdrDigits    = 3
)

// DecodeHDR returns the exact histogram behind h (values in microseconds), or nil when h carries
// none (a fakelaravel older than the HDR field).
func (h Histogram) DecodeHDR() (*hdr.Histogram, error) {
	if h.HDR == "" {
		return nil, nil
	}
	return hdr.Decode([]byte(h.HDR))
}

// histogram is the mutable form of Histogram.
type histogram struct {
	counts []int64
	count  int64
	sum    float64
	max    float64
	exact  *hdr.Histogram
}

func newHistogram() histogram {
	return histogram{counts: make([]int64, len(histogramBoundsMS)+1), exact: hdr.New(hdrLowestUS, hdrHighestUS, hdrDigits)}
}

func (h *histogram) observe(d time.Duration) {
	ms := float64(d) / float64(time.Millisecond)
	i := 0
	for i < len(histogramBoundsMS) && ms > histogramBoundsMS[i] {
		i++
	}
	h.counts[i]++
	h.count++
	h.sum += ms
	h.max = math.Max(h.max, ms)
	us := min(max(d.Microseconds(), hdrLowestUS), hdrHighestUS)
	_ = h.exact.RecordValue(us) // in range by construction
}

// quantile is the q-quantile in milliseconds, exact to the HDR histogram's 3 digits.
func (h *histogram) quantile(q float64) float64 {
	if h.count == 0 {
		return 0
	}
	return float64(h.exact.ValueAtQuantile(q*100)) / 1000
}

func (h *histogram) snapshot() Histogram {
	var encoded string
	if h.count > 0 {
		if b, err := h.exact.Encode(hdr.V2CompressedEncodingCookieBase); err == nil {
			encoded = string(b)
		}
	}
	return Histogram{
		HDR:      encoded,
		BoundsMS: append([]float64(nil), histogramBoundsMS...),
		Counts:   append([]int64(nil), h.counts...),
		Count:    h.count,
		SumMS:    h.sum,
		MaxMS:    h.max,
		P50MS:    h.quantile(0.50),
		P90MS:    h.quantile(0.90),
		P99MS:    h.quantile(0.99),
	}
}

// endpointCounters is the mutable form of EndpointStats with a ring of per-second points.
type endpointCounters struct {
	requests, items, updated, stale, failed, replayed int64
	codes                                             map[int]int64
	wait, service, response                           histogram
	ring                                              []SecondPoint
}

// record is what one answered request adds to the stats.
type record struct {
	endpoint                      string
	status                        int
	items, updated, stale, failed int
	replayed                      bool
	served                        bool // reached a worker
	queueWait, service            time.Duration
	outcome                       outcome
	arrived                       time.Time // zero: no response time recorded
	queueHidden                   bool      // a real app's queue, inside its service time: not recorded
}

// statsBook accumulates Stats. Safe for concurrent use.
type statsBook struct {
	mu                                    sync.Mutex
	started                               time.Time
	seriesSeconds                         int
	endpoints                             map[string]*endpointCounters
	workers                               []workerSlot
	busyBase, abandonedBase               int64 // pool counters at the book's start
	authFailures, sigFailures, lost, errs int64
	injected                              map[string]int64
	unaccounted                           int64
	refusals                              Refusals
}

func newStatsBook(now time.Time, seriesSeconds int) *statsBook {
	b := &statsBook{started: now, seriesSeconds: seriesSeconds, endpoints: map[string]*endpointCounters{}, workers: make([]workerSlot, seriesSeconds),
		injected: map[string]int64{}, refusals: Refusals{BySession: map[string]int64{}, Items: []RefusedItem{}}}
	for _, e := range Endpoints {
		b.endpoints[e] = &endpointCounters{codes: map[int]int64{}, wait: newHistogram(), service: newHistogram(), response: newHistogram(), ring: make([]SecondPoint, seriesSeconds)}
	}
	return b
}

func (b *statsBook) add(now time.Time, r record) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ec := b.endpoints[r.endpoint]
	if ec == nil {
		ec = b.endpoints[EndpointOther]
	}
	ec.requests++
	ec.items += int64(r.items)
	ec.updated += int64(r.updated)
	ec.stale += int64(r.stale)
	ec.failed += int64(r.failed)
	if r.replayed {
		ec.replayed++
	}
	ec.codes[r.status]++
	if r.served {
		if !r.queueHidden {
			ec.wait.observe(r.queueWait)
		}
		ec.service.observe(r.service)
	}
	if !r.arrived.IsZero() {
		ec.response.observe(now.Sub(r.arrived))
	}
	sec := now.Unix()
	p := &ec.ring[int(sec%int64(b.seriesSeconds))]
	if p.Unix != sec {
		*p = SecondPoint{Unix: sec}
	}
	p.Requests++
	p.Items += int64(r.items)
	switch {
	case r.status >= 500:
		p.Server++
	case r.status >= 400:
		p.Client++
	case r.status >= 200 && r.status < 300:
		p.OK++
	}
	switch r.outcome {
	case outcomeRejected:
		p.Rejected++
	case outcomeTimedOut:
		p.TimedOut++
	}
}

// sample records the worker pool's state at now.
func (b *statsBook) sample(now time.Time, busy int64, queued int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	sec := now.Unix()
	w := &b.workers[int(sec%int64(b.seriesSeconds))]
	if w.unix != sec {
		*w = workerSlot{unix: sec}
	}
	w.busySum += busy
	w.samples++
	w.queuedMax = max(w.queuedMax, queued)
}

// firstSecond is the oldest second of a series of at most seconds seconds ending at now.
func (b *statsBook) firstSecond(now time.Time, seconds int) int64 {
	if seconds < 0 || seconds > b.seriesSeconds {
		seconds = b.seriesSeconds
	}
	return max(b.started.Unix(), now.Unix()-int64(seconds)+1)
}

// workerSeries returns the per-second worker points of the last seconds seconds (all kept when
// seconds < 0).
func (b *statsBook) workerSeries(now time.Time, workers, seconds int) []WorkerPoint {
	b.mu.Lock()
	defer b.mu.Unlock()
	first := b.firstSecond(now, seconds)
	out := make([]WorkerPoint, 0, now.Unix()-first+1)
	for sec := first; sec <= now.Unix(); sec++ {
		p := WorkerPoint{Unix: sec}
		if w := b.workers[int(sec%int64(b.seriesSeconds))]; w.unix == sec && w.samples > 0 {
			p.BusyMean = float64(w.busySum) / float64(w.samples)
			p.Utilization = p.BusyMean / float64(workers)
			p.QueuedMax = w.queuedMax
		}
		out = append(out, p)
	}
	return out
}

// inject counts a request changed by a fault, under its InjectedKey.
func (b *statsBook) inject(key string) {
	b.mu.Lock()
	b.injected[key]++
	b.mu.Unlock()
}

// withheld records the items of one applied batch that item faults kept from being applied.
func (b *statsBook) withheld(refused []RefusedItem, unaccounted int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.unaccounted += int64(unaccounted)
	for _, it := range refused {
		b.refusals.Total++
		b.refusals.BySession[it.SessionID]++
		if len(b.refusals.Items) < MaxRefusedItemsListed {
			b.refusals.Items = append(b.refusals.Items, it)
		} else {
			b.refusals.Truncated = true
		}
	}
}

// refusalsSnapshot returns a copy of the refusals.
func (b *statsBook) refusalsSnapshot() Refusals {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.refusals
	r.BySession = maps.Clone(b.refusals.BySession)
	r.Items = slices.Clone(b.refusals.Items)
	return r
}

func (b *statsBook) count(field *int64) {
	b.mu.Lock()
	*field++
	b.mu.Unlock()
}

// snapshot returns the counters with the last seconds seconds of series (all kept when
// seconds < 0); an endpoint without requests has no series.
func (b *statsBook) snapshot(now time.Time, seconds int) Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := Stats{
		StartedAt:         b.started,
		UptimeSeconds:     now.Sub(b.started).Seconds(),
		Endpoints:         map[string]EndpointStats{},
		AuthFailures:      b.authFailures,
		SignatureFailures: b.sigFailures,
		LostResponses:     b.lost,
		InjectedErrors:    b.errs,
		Injected:          maps.Clone(b.injected),
		RefusedItems:      b.refusals.Total,
		UnaccountedItems:  b.unaccounted,
	}
	first := b.firstSecond(now, seconds)
	for name, ec := range b.endpoints {
		es := EndpointStats{
			Requests: ec.requests, Items: ec.items, Updated: ec.updated, Stale: ec.stale, Failed: ec.failed,
			Replayed: ec.replayed, StatusCodes: map[string]int64{},
			QueueWait: ec.wait.snapshot(), Service: ec.service.snapshot(), Response: ec.response.snapshot(),
			Series: []SecondPoint{},
		}
		for code, n := range ec.codes {
			es.StatusCodes[strconv.Itoa(code)] = n
		}
		for sec := first; ec.requests > 0 && sec <= now.Unix(); sec++ {
			p := ec.ring[int(sec%int64(b.seriesSeconds))]
			if p.Unix != sec {
				p = SecondPoint{Unix: sec}
			}
			es.Series = append(es.Series, p)
		}
		st.Endpoints[name] = es
	}
	return st
}
