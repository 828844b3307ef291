package calibrate

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"wagate/gateway/laravel"
)

// Kind is one of the calibrated requests.
type Kind string

// The calibrated request kinds: the isSessionActive lookup, and status batches of 1 and 50 items.
const (
	KindGet    Kind = "get"
	KindPost1  Kind = "post1"
	KindPost50 Kind = "post50"
)

// Kinds lists the calibrated kinds in the order they are measured.
var Kinds = []Kind{KindGet, KindPost1, KindPost50}

// Rows is the number of rows fakelaravel charges PerRowCPU for: one for a lookup, one per item for
// a batch.
func (k Kind) Rows() int {
	if k == KindPost50 {
		return 50
	}
	return 1
}

// Label is the human name of the kind in tables.
func (k Kind) Label() string {
	switch k {
	case KindGet:
		return "GET session"
	case KindPost1:
		return "POST batch 1"
	case KindPost50:
		return "POST batch 50"
	}
	return string(k)
}

// Target is a Laravel implementation under test.
type Target struct {
	// Name labels the target in reports ("laravel", "fakelaravel").
	Name string
	// BaseURL is the loopback base URL, e.g. "http://127.0.0.1:8089".
	BaseURL string
	// Token is the bearer token.
	Token string
	// Secret signs request bodies when set.
	Secret []byte
	// Sessions is how many sessions the workload spreads over (default 2000).
	Sessions int
}

// Load generator limits.
const (
	// DefaultTimeout bounds one request.
	DefaultTimeout = 15 * time.Second
	// maxSamples bounds the latencies kept by one run (and so its request count).
	maxSamples = 200_000
)

// workload builds the requests of one kind against one target.
type workload struct {
	target   Target
	kind     Kind
	client   *http.Client
	seq      atomic.Int64
	version  atomic.Int64
	sessions int
	run      string
}

func newWorkload(t Target, k Kind, client *http.Client) *workload {
	w := &workload{target: t, kind: k, client: client, sessions: t.Sessions, run: strconv.FormatInt(time.Now().UnixNano(), 36)}
	if w.sessions <= 0 {
		w.sessions = 2000
	}
	// Versions only grow, across runs too, so every item is applied (a stale item is cheaper).
	w.version.Store(time.Now().UnixMicro())
	return w
}

// sessionID names calibration session i.
func sessionID(i int) string { return fmt.Sprintf("cal-%05d", i) }

// statusBody renders a status batch of n items starting at session first.
func (w *workload) statusBody(first, n int) []byte {
	var b bytes.Buffer
	b.Grow(n * 140)
	b.WriteString(`{"statuses":[`)
	now := time.Now().UTC().Format(time.RFC3339Nano)
	for j := range n {
		if j > 0 {
			b.WriteByte(',')
		}
		v := w.version.Add(1)
		estado := laravel.StatusConnected
		if v%2 == 0 {
			estado = laravel.StatusDisconnected
		}
		fmt.Fprintf(&b, `{"session_id":%q,"estado_qr":%q,"version":%d,"event_id":"ev-%d","changed_at":%q}`,
			sessionID((first+j)%w.sessions), estado, v, v, now)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// request builds the next request of the workload.
func (w *workload) request(ctx context.Context) (*http.Request, error) {
	i := int(w.seq.Add(1))
	var (
		req  *http.Request
		body []byte
		err  error
	)
	switch w.kind {
	case KindGet:
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, w.target.BaseURL+laravel.PathSessionPrefix+sessionID(i%w.sessions), http.NoBody)
	default:
		n := w.kind.Rows()
		body = w.statusBody(i*n, n)
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, w.target.BaseURL+laravel.PathStatusBatch, bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(laravel.HeaderIdempotencyKey, "cal-"+w.run+"-"+strconv.Itoa(i))
		}
	}
	if err != nil {
		return nil, fmt.Errorf("calibrate: build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+w.target.Token)
	if len(w.target.Secret) > 0 {
		ts := time.Now().Unix()
		req.Header.Set(laravel.HeaderTimestamp, strconv.FormatInt(ts, 10))
		req.Header.Set(laravel.HeaderSignature, laravel.Sign(w.target.Secret, ts, body))
	}
	return req, nil
}

// do sends one request and returns its status (0 for a transport error) and latency.
func (w *workload) do(ctx context.Context) (int, time.Duration) {
	req, err := w.request(ctx)
	if err != nil {
		return 0, 0
	}
	start := time.Now()
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, time.Since(start)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	return resp.StatusCode, time.Since(start)
}

// NewClient returns an HTTP client for loopback load: many keep-alive connections, no
// compression, DefaultTimeout per request.
func NewClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 4096
	tr.MaxIdleConnsPerHost = 4096
	tr.DisableCompression = true
	tr.Proxy = nil
	return &http.Client{Transport: tr, Timeout: DefaultTimeout}
}

// Result is what one load run observed.
type Result struct {
	// Kind is the request kind.
	Kind Kind `json:"kind"`
	// Mode is "closed" (Concurrency clients back to back) or "open" (Poisson arrivals at Rate).
	Mode string `json:"mode"`
	// Concurrency is the number of clients of a closed run.
	Concurrency int `json:"concurrency,omitempty"`
	// Rate is the offered arrival rate of an open run, requests per second.
	Rate float64 `json:"rate,omitempty"`
	// Elapsed is the time from the first request to the last answer.
	Elapsed time.Duration `json:"elapsed_ns"`
	// Sent counts requests sent; Dropped arrivals an open run could not start (in-flight cap).
	Sent    int `json:"sent"`
	Dropped int `json:"dropped,omitempty"`
	// Status counts answers per HTTP status; status 0 counts transport errors and timeouts.
	Status map[int]int `json:"status"`
	// First502 is when the first 502 arrived, from the start of the run (0 if none).
	First502 time.Duration `json:"first_502_ns,omitempty"`
	// OthersCores is the CPU (in cores) other processes on the machine used during the run
	// (Measure fills it in; -1 when it could not be read).
	OthersCores float64 `json:"others_cores"`

	ok []time.Duration // sorted latencies of 2xx answers
}

// OK counts 2xx answers.
func (r *Result) OK() int { return len(r.ok) }

// Throughput is 2xx answers per second of Elapsed.
func (r *Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(len(r.ok)) / r.Elapsed.Seconds()
}

// Percentile returns the p-th percentile (0..100) of 2xx latencies, interpolated linearly between
// the closest ranks (k6's method); 0 without samples.
func (r *Result) Percentile(p float64) time.Duration { return percentile(r.ok, p) }

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	x := p / 100 * float64(len(sorted)-1)
	lo := int(math.Floor(x))
	hi := min(lo+1, len(sorted)-1)
	f := x - float64(lo)
	return time.Duration(float64(sorted[lo])*(1-f) + float64(sorted[hi])*f)
}

// Fraction returns the share of sent requests answered with status.
func (r *Result) Fraction(status int) float64 {
	if r.Sent == 0 {
		return 0
	}
	return float64(r.Status[status]) / float64(r.Sent)
}

// recorder collects the answers of one run from many goroutines.
type recorder struct {
	mu     sync.Mutex
	start  time.Time
	status map[int]int
	ok     []time.Duration
	sent   int
	first  time.Duration
	last   time.Time
}

func newRecorder() *recorder { return &recorder{start: time.Now(), status: map[int]int{}} }

func (rc *recorder) add(status int, d time.Duration) {
	now := time.Now()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.sent++
	rc.status[status]++
	if status >= 200 && status < 300 && len(rc.ok) < maxSamples {
		rc.ok = append(rc.ok, d)
	}
	if status == http.StatusBadGateway && rc.first == 0 {
		rc.first = now.Sub(rc.start)
	}
	if now.After(rc.last) {
		rc.last = now
	}
}

func (rc *recorder) result(k Kind, mode string) *Result {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	slices.Sort(rc.ok)
	r := &Result{Kind: k, Mode: mode, Sent: rc.sent, Status: rc.status, First502: rc.first, ok: rc.ok}
	if !rc.last.IsZero() {
		r.Elapsed = rc.last.Sub(rc.start)
	}
	return r
}

// ClosedLoop runs concurrency clients that send requests of kind back to back for duration or
// until maxRequests were sent, and waits for the last answers.
func ClosedLoop(ctx context.Context, t Target, client *http.Client, k Kind, concurrency int, duration time.Duration, maxRequests int) *Result {
	w := newWorkload(t, k, client)
	rc := newRecorder()
	deadline := time.Now().Add(duration)
	var budget atomic.Int64
	budget.Store(int64(min(maxRequests, maxSamples)))
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) && budget.Add(-1) >= 0 {
				status, d := w.do(ctx)
				rc.add(status, d)
			}
		})
	}
	wg.Wait()
	r := rc.result(k, "closed")
	r.Concurrency = concurrency
	return r
}

// OpenLoop sends requests of kind at Poisson arrivals of mean rate per second for duration (at
// most maxRequests), never more than maxInFlight at once (the excess is counted as Dropped), and
// waits for the answers, each bounded by the client's timeout and, when drain > 0, by the end of
// the run plus drain (a request still unanswered then is abandoned and counted as status 0).
// seed fixes the arrival times.
func OpenLoop(ctx context.Context, t Target, client *http.Client, k Kind, rate float64, duration, drain time.Duration, maxRequests, maxInFlight int, seed uint64) *Result {
	if drain > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, duration+drain)
		defer cancel()
	}
	w := newWorkload(t, k, client)
	rc := newRecorder()
	rng := rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d))
	maxRequests = min(maxRequests, maxSamples)
	sem := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	dropped := 0
	start := time.Now()
	next := time.Duration(0)
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for sent := 0; sent < maxRequests && ctx.Err() == nil; sent++ {
		next += time.Duration(rng.ExpFloat64() / rate * float64(time.Second))
		if next > duration {
			break
		}
		if wait := time.Until(start.Add(next)); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
			}
		}
		select {
		case sem <- struct{}{}:
		default:
			dropped++
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			status, d := w.do(ctx)
			rc.add(status, d)
		})
	}
	wg.Wait()
	r := rc.result(k, "open")
	r.Rate = rate
	r.Dropped = dropped
	return r
}

// Seed creates the calibration sessions (one status batch per 500) so lookups find them.
func Seed(ctx context.Context, t Target, client *http.Client) error {
	w := newWorkload(t, KindPost50, client)
	for first := 0; first < w.sessions; first += laravel.MaxBatchItems {
		n := min(laravel.MaxBatchItems, w.sessions-first)
		body := w.statusBody(first, n)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.BaseURL+laravel.PathStatusBatch, bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("calibrate: seed: %w", err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Authorization", "Bearer "+t.Token)
		req.Header.Set(laravel.HeaderIdempotencyKey, "cal-seed-"+w.run+"-"+strconv.Itoa(first))
		if len(t.Secret) > 0 {
			ts := time.Now().Unix()
			req.Header.Set(laravel.HeaderTimestamp, strconv.FormatInt(ts, 10))
			req.Header.Set(laravel.HeaderSignature, laravel.Sign(t.Secret, ts, body))
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("calibrate: seed %s: %w", t.Name, err)
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("calibrate: seed %s: HTTP %d: %s", t.Name, resp.StatusCode, bytes.TrimSpace(msg))
		}
	}
	return nil
}
