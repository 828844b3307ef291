package fakelaravel

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"wagate/gateway/laravel"
)

const testToken = "test-token"

// fastCapacity serves without modelled CPU, so tests measure behaviour, not time.
var fastCapacity = CapacityModel{Workers: 4, Backlog: 64, ProxyTimeout: 30 * time.Second}

type harness struct {
	t      *testing.T
	srv    *Server
	ts     *httptest.Server
	secret []byte
}

func newHarness(t *testing.T, mutate func(*Config)) *harness {
	t.Helper()
	cfg := Config{Token: testToken, Capacity: fastCapacity, DBPath: t.TempDir() + "/laravel.sqlite"}
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(func() { ts.Close(); srv.Close() })
	return &harness{t: t, srv: srv, ts: ts, secret: cfg.Secret}
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// do sends a request with the token (and a signature when the harness has a secret).
func (h *harness) do(method, path, body string, headers map[string]string) reply {
	h.t.Helper()
	req, err := http.NewRequest(method, h.ts.URL+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/json")
	if len(h.secret) > 0 && method == http.MethodPost {
		ts := time.Now().Unix()
		req.Header.Set(laravel.HeaderTimestamp, fmt.Sprint(ts))
		req.Header.Set(laravel.HeaderSignature, laravel.Sign(h.secret, ts, []byte(body)))
	}
	for k, v := range headers {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := h.ts.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, b}
}

func statusBatchBody(items ...laravel.StatusItem) string {
	b, _ := json.Marshal(laravel.StatusBatch{Statuses: items})
	return string(b)
}

func qrBatchBody(items ...laravel.QRItem) string {
	b, _ := json.Marshal(laravel.QRBatch{QRs: items})
	return string(b)
}

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func st(id string, s laravel.Status, v int64) laravel.StatusItem {
	return laravel.StatusItem{SessionID: id, EstadoQR: s, Version: v, EventID: fmt.Sprintf("ev-%s-%d", id, v), ChangedAt: t0}
}

func qr(id, code string, v int64) laravel.QRItem {
	return laravel.QRItem{SessionID: id, QR: code, Version: v, EventID: fmt.Sprintf("qr-%s-%d", id, v), GeneratedAt: t0}
}

func (h *harness) postStatuses(key string, items ...laravel.StatusItem) (reply, laravel.BatchResult) {
	h.t.Helper()
	r := h.do(http.MethodPost, laravel.PathStatusBatch, statusBatchBody(items...), map[string]string{laravel.HeaderIdempotencyKey: key})
	var res laravel.BatchResult
	if r.status == http.StatusOK {
		r.json(h.t, &res)
	}
	return r, res
}

func (h *harness) session(id string) (laravel.SessionInfo, int) {
	h.t.Helper()
	r := h.do(http.MethodGet, laravel.PathSessionPrefix+id, "", nil)
	var info laravel.SessionInfo
	if r.status == http.StatusOK {
		r.json(h.t, &info)
	}
	return info, r.status
}

func TestBatchAppliesNewerVersionsAndCountsStaleOnes(t *testing.T) {
	h := newHarness(t, nil)
	r, res := h.postStatuses("k1", st("alice", laravel.StatusPending, 1), st("bob", laravel.StatusConnected, 5))
	if r.status != 200 || res.Updated != 2 || res.Stale != 0 || !res.Success || res.Errors == nil {
		t.Fatalf("first batch: %d %s", r.status, r.body)
	}
	// alice moves on; bob's older and equal versions are stale.
	_, res = h.postStatuses("k2", st("alice", laravel.StatusConnected, 2), st("bob", laravel.StatusDisconnected, 4), st("bob", laravel.StatusLoggedOut, 5))
	if res.Updated != 1 || res.Stale != 2 || res.Failed != 0 {
		t.Fatalf("second batch: %+v", res)
	}
	bob, code := h.session("bob")
	if code != 200 || bob.EstadoQR != laravel.StatusConnected || bob.StatusVersion != 5 || !bob.Active {
		t.Fatalf("bob after stale items: %d %+v", code, bob)
	}
	alice, _ := h.session("alice")
	if alice.EstadoQR != laravel.StatusConnected || alice.StatusVersion != 2 {
		t.Fatalf("alice: %+v", alice)
	}
	stats := h.srv.Stats().Endpoints[EndpointStatusBatch]
	if stats.Requests != 2 || stats.Items != 5 || stats.Updated != 3 || stats.Stale != 2 {
		t.Fatalf("stats: %+v", stats)
	}
}

func TestQRBatchKeepsTheNewestCode(t *testing.T) {
	h := newHarness(t, nil)
	r := h.do(http.MethodPost, laravel.PathQRBatch, qrBatchBody(qr("s1", "code-2", 2), qr("s1", "code-1", 1)), map[string]string{laravel.HeaderIdempotencyKey: "q1"})
	var res laravel.BatchResult
	r.json(t, &res)
	if r.status != 200 || res.Updated != 1 || res.Stale != 1 {
		t.Fatalf("qr batch: %d %s", r.status, r.body)
	}
	info, _ := h.session("s1")
	if info.QR != "code-2" || info.QRVersion != 2 || info.EstadoQR != laravel.StatusPending {
		t.Fatalf("session: %+v", info)
	}
}

func TestReplayedKeyReturnsStoredResponseWithoutApplying(t *testing.T) {
	h := newHarness(t, nil)
	first, _ := h.postStatuses("same-key", st("s1", laravel.StatusConnected, 10))
	// Another batch moves the session on.
	h.postStatuses("other-key", st("s1", laravel.StatusDisconnected, 11))
	replay, res := h.postStatuses("same-key", st("s1", laravel.StatusConnected, 10))
	if replay.status != 200 || !bytes.Equal(first.body, replay.body) || res.Updated != 1 || replay.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d %s (first %s)", replay.status, replay.body, first.body)
	}
	if info, _ := h.session("s1"); info.EstadoQR != laravel.StatusDisconnected || info.StatusVersion != 11 {
		t.Fatalf("replay re-applied: %+v", info)
	}
	if got := h.srv.Stats().Endpoints[EndpointStatusBatch].Replayed; got != 1 {
		t.Fatalf("replayed = %d", got)
	}
}

func TestReusedKeyWithDifferentBodyIs422(t *testing.T) {
	h := newHarness(t, nil)
	h.postStatuses("k", st("s1", laravel.StatusConnected, 1))
	r, _ := h.postStatuses("k", st("s1", laravel.StatusConnected, 2))
	var verr laravel.ValidationError
	r.json(t, &verr)
	if r.status != 422 || len(verr.Errors[laravel.HeaderIdempotencyKey]) != 1 {
		t.Fatalf("got %d %s", r.status, r.body)
	}
	if info, _ := h.session("s1"); info.StatusVersion != 1 {
		t.Fatalf("applied: %+v", info)
	}
}

func TestKeyInFlightIs409(t *testing.T) {
	h := newHarness(t, nil)
	if !h.srv.acquire("busy") { // as if a worker were applying a batch with this key
		t.Fatal("acquire")
	}
	r, _ := h.postStatuses("busy", st("s1", laravel.StatusConnected, 1))
	if r.status != 409 || r.header.Get("Retry-After") == "" {
		t.Fatalf("got %d %s", r.status, r.body)
	}
	h.srv.release("busy")
	if r, _ := h.postStatuses("busy", st("s1", laravel.StatusConnected, 1)); r.status != 200 {
		t.Fatalf("after release: %d %s", r.status, r.body)
	}
}

func TestConcurrentSameKeyAppliesOnce(t *testing.T) {
	h := newHarness(t, nil)
	body := statusBatchBody(st("s1", laravel.StatusConnected, 1))
	var wg sync.WaitGroup
	codes := make([]int, 20)
	for i := range codes {
		wg.Go(func() {
			codes[i] = h.do(http.MethodPost, laravel.PathStatusBatch, body, map[string]string{laravel.HeaderIdempotencyKey: "dup"}).status
		})
	}
	wg.Wait()
	for _, c := range codes {
		if c != 200 && c != 409 {
			t.Fatalf("codes %v", codes)
		}
	}
	es := h.srv.Stats().Endpoints[EndpointStatusBatch]
	if es.Updated != 1 || es.Stale != 0 {
		t.Fatalf("applied more than once: %+v (codes %v)", es, codes)
	}
}

func TestLegacyEndpointsOverwriteWithoutVersions(t *testing.T) {
	h := newHarness(t, nil)
	for _, s := range []laravel.Status{laravel.StatusConnected, laravel.StatusPending, laravel.StatusDisconnected} {
		r := h.do(http.MethodPost, laravel.PathStatus, fmt.Sprintf(`{"session_id":"leg","estado_qr":%q}`, s), nil)
		if r.status != 200 || string(bytes.TrimSpace(r.body)) != `{"success":true}` {
			t.Fatalf("legacy status: %d %s", r.status, r.body)
		}
	}
	if r := h.do(http.MethodPost, laravel.PathQR, `{"session_id":"leg","qr":"2@abc"}`, nil); r.status != 200 {
		t.Fatalf("legacy qr: %d %s", r.status, r.body)
	}
	info, _ := h.session("leg")
	if info.EstadoQR != laravel.StatusDisconnected || info.QR != "2@abc" || info.StatusVersion != 0 || info.Active {
		t.Fatalf("legacy: %+v", info)
	}
	stats := h.srv.Stats()
	if stats.Endpoints[EndpointStatus].Items != 3 || stats.Endpoints[EndpointQR].Items != 1 || stats.Endpoints[EndpointSession].Requests != 1 {
		t.Fatalf("stats: %+v", stats.Endpoints)
	}
}

func TestUnknownSessionIs404(t *testing.T) {
	h := newHarness(t, nil)
	if _, code := h.session("nobody"); code != 404 {
		t.Fatalf("got %d", code)
	}
	if _, code := h.session("bad%20id"); code != 404 {
		t.Fatalf("bad id: got %d", code)
	}
}

func TestRejectUnknownSessionsFailsItemsOneByOne(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.RejectUnknownSessions = true })
	if err := h.srv.store.setEnabled(t.Context(), "known", true, time.Now()); err != nil {
		t.Fatal(err)
	}
	_, res := h.postStatuses("k", st("known", laravel.StatusConnected, 1), st("ghost", laravel.StatusConnected, 1))
	if res.Updated != 1 || res.Failed != 1 || res.Success || len(res.Errors) != 1 || res.Errors[0].SessionID != "ghost" {
		t.Fatalf("got %+v", res)
	}
	if r := h.do(http.MethodPost, laravel.PathStatus, `{"session_id":"ghost","estado_qr":"connected"}`, nil); r.status != 404 {
		t.Fatalf("legacy unknown: %d", r.status)
	}
}

// Every bad input gets its status and a clear message, and nothing is applied.
func TestBadInputNeverHalfApplies(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxItems = 3 })
	valid := `{"session_id":"fresh","estado_qr":"connected","version":1,"event_id":"e","changed_at":"2026-11-27T12:00:00Z"}`
	cases := []struct {
		name, path, body string
		headers          map[string]string
		status           int
		field            string
	}{
		{"malformed JSON", laravel.PathStatusBatch, `{"statuses":[`, nil, 422, "body"},
		{"not an object", laravel.PathStatusBatch, `[1,2]`, nil, 422, "body"},
		{"trailing data", laravel.PathStatusBatch, `{"statuses":[` + valid + `]} x`, nil, 422, "body"},
		{"missing statuses", laravel.PathStatusBatch, `{}`, nil, 422, "statuses"},
		{"statuses not an array", laravel.PathStatusBatch, `{"statuses":"x"}`, nil, 422, "statuses"},
		{"item not an object", laravel.PathStatusBatch, `{"statuses":[` + valid + `,7]}`, nil, 422, "statuses.1"},
		{"unknown estado_qr", laravel.PathStatusBatch, `{"statuses":[` + valid + `,{"session_id":"b","estado_qr":"happy","version":1,"event_id":"e","changed_at":"2026-11-27T12:00:00Z"}]}`, nil, 422, "statuses.1.estado_qr"},
		{"version wrong type", laravel.PathStatusBatch, `{"statuses":[` + valid + `,{"session_id":"b","estado_qr":"connected","version":"7","event_id":"e","changed_at":"2026-11-27T12:00:00Z"}]}`, nil, 422, "statuses.1.version"},
		{"missing session_id", laravel.PathStatusBatch, `{"statuses":[` + valid + `,{"estado_qr":"connected","version":1,"event_id":"e","changed_at":"2026-11-27T12:00:00Z"}]}`, nil, 422, "statuses.1.session_id"},
		{"bad date", laravel.PathStatusBatch, `{"statuses":[` + valid + `,{"session_id":"b","estado_qr":"connected","version":1,"event_id":"e","changed_at":"yesterday"}]}`, nil, 422, "statuses.1.changed_at"},
		{"too many items", laravel.PathStatusBatch, `{"statuses":[` + strings.Repeat(valid+",", 3) + valid + `]}`, nil, 422, "statuses"},
		{"qr missing", laravel.PathQRBatch, `{"qrs":[{"session_id":"fresh","version":1,"event_id":"e","generated_at":"2026-11-27T12:00:00Z"}]}`, nil, 422, "qrs.0.qr"},
		{"missing idempotency key", laravel.PathStatusBatch, `{"statuses":[` + valid + `]}`, map[string]string{laravel.HeaderIdempotencyKey: ""}, 422, laravel.HeaderIdempotencyKey},
		{"legacy unknown estado_qr", laravel.PathStatus, `{"session_id":"fresh","estado_qr":"nope"}`, nil, 422, "estado_qr"},
		{"legacy qr wrong type", laravel.PathQR, `{"session_id":"fresh","qr":5}`, nil, 422, "qr"},
		{"body over 1 MiB", laravel.PathStatusBatch, `{"statuses":[],"pad":"` + strings.Repeat("x", laravel.MaxBodyBytes) + `"}`, nil, 413, ""},
		{"wrong token", laravel.PathStatusBatch, `{"statuses":[` + valid + `]}`, map[string]string{"Authorization": "Bearer nope"}, 401, ""},
		{"no token", laravel.PathStatus, `{"session_id":"fresh","estado_qr":"connected"}`, map[string]string{"Authorization": ""}, 401, ""},
		{"wrong method", laravel.PathStatusBatch, ``, nil, 405, ""},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			headers := map[string]string{laravel.HeaderIdempotencyKey: fmt.Sprintf("bad-%d", i)}
			for k, v := range c.headers {
				headers[k] = v
			}
			method := http.MethodPost
			if c.status == 405 {
				method = http.MethodGet
			}
			r := h.do(method, c.path, c.body, headers)
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.body)
			}
			if r.header.Get("Content-Type") != "application/json" {
				t.Fatalf("content type %q", r.header.Get("Content-Type"))
			}
			var verr laravel.ValidationError
			r.json(t, &verr)
			if verr.Message == "" {
				t.Fatalf("no message: %s", r.body)
			}
			if c.field != "" && len(verr.Errors[c.field]) == 0 {
				t.Fatalf("no error for %q: %s", c.field, r.body)
			}
		})
	}
	if st, _ := h.srv.State(t.Context()); len(st.Sessions) != 0 {
		t.Fatalf("bad input applied something: %+v", st.Sessions)
	}
	if got := h.srv.Stats().AuthFailures; got != 2 {
		t.Fatalf("auth failures %d", got)
	}
}

func TestSignatureIsRequiredWhenASecretIsSet(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Secret = []byte("s3cret") })
	body := statusBatchBody(st("s1", laravel.StatusConnected, 1))
	now := fmt.Sprint(time.Now().Unix())
	for name, hdr := range map[string]map[string]string{
		"missing":   {laravel.HeaderSignature: "", laravel.HeaderTimestamp: ""},
		"wrong":     {laravel.HeaderSignature: laravel.Sign([]byte("other"), time.Now().Unix(), []byte(body)), laravel.HeaderTimestamp: now},
		"expired":   {laravel.HeaderSignature: laravel.Sign([]byte("s3cret"), 1000, []byte(body)), laravel.HeaderTimestamp: "1000"},
		"tampering": {laravel.HeaderSignature: laravel.Sign([]byte("s3cret"), time.Now().Unix(), []byte(body+" ")), laravel.HeaderTimestamp: now},
	} {
		hdr[laravel.HeaderIdempotencyKey] = "sig-" + name
		if r := h.do(http.MethodPost, laravel.PathStatusBatch, body, hdr); r.status != 401 {
			t.Fatalf("%s signature: %d %s", name, r.status, r.body)
		}
	}
	if r, _ := h.postStatuses("signed", st("s1", laravel.StatusConnected, 1)); r.status != 200 {
		t.Fatalf("signed: %d %s", r.status, r.body)
	}
	if got := h.srv.Stats().SignatureFailures; got != 4 {
		t.Fatalf("signature failures %d", got)
	}
}

func TestInjectedErrorsCarryRetryAfter(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Faults = Faults{ErrorRate: 1, ErrorStatus: 429, RetryAfterS: 7} })
	r, _ := h.postStatuses("k", st("s1", laravel.StatusConnected, 1))
	if r.status != 429 || r.header.Get("Retry-After") != "7" {
		t.Fatalf("got %d %v", r.status, r.header)
	}
	if err := h.srv.SetFaults(Faults{}); err != nil {
		t.Fatal(err)
	}
	if r, _ := h.postStatuses("k", st("s1", laravel.StatusConnected, 1)); r.status != 200 {
		t.Fatalf("after clearing faults: %d", r.status)
	}
	if got := h.srv.Stats().InjectedErrors; got != 1 {
		t.Fatalf("injected %d", got)
	}
}

func TestLostResponseAppliesThenDropsTheAnswer(t *testing.T) {
	for _, mode := range []string{LostResponseClose, LostResponseEmpty} {
		t.Run(mode, func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.Faults = Faults{LostResponseRate: 1, LostResponseMode: mode} })
			body := statusBatchBody(st("s1", laravel.StatusConnected, 3))
			req, _ := http.NewRequest(http.MethodPost, h.ts.URL+laravel.PathStatusBatch, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+testToken)
			req.Header.Set(laravel.HeaderIdempotencyKey, "lost")
			resp, err := h.ts.Client().Do(req)
			switch mode {
			case LostResponseClose:
				if err == nil {
					resp.Body.Close()
					t.Fatalf("want a dropped connection, got %d", resp.StatusCode)
				}
			case LostResponseEmpty:
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || len(b) != 0 {
					t.Fatalf("want 200 without body, got %d %q", resp.StatusCode, b)
				}
			}
			h.srv.SetFaults(Faults{})
			// The write was applied; the retry with the same key is a replay.
			r, res := h.postStatuses("lost", st("s1", laravel.StatusConnected, 3))
			if r.status != 200 || res.Updated != 1 || r.header.Get("Idempotent-Replayed") != "true" {
				t.Fatalf("retry: %d %s", r.status, r.body)
			}
			if got := h.srv.Stats().LostResponses; got != 1 {
				t.Fatalf("lost %d", got)
			}
		})
	}
}

func TestAdminAPIAndMetrics(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.AdminToken = "admin" })
	h.postStatuses("k", st("s1", laravel.StatusConnected, 4))
	ctx := context.Background()
	if err := NewAdminClient(h.ts.URL, "wrong", nil).Reset(ctx); err == nil {
		t.Fatal("reset with a wrong admin token succeeded")
	}
	ac := NewAdminClient(h.ts.URL, "admin", h.ts.Client())
	if err := ac.Healthy(ctx); err != nil {
		t.Fatal(err)
	}
	state, err := ac.GetState(ctx)
	if err != nil || len(state.Sessions) != 1 || state.Sessions[0].StatusVersion != 4 {
		t.Fatalf("state %+v %v", state, err)
	}
	stats, err := ac.GetStats(ctx)
	es := stats.Endpoints[EndpointStatusBatch]
	if err != nil || es.Requests != 1 || es.StatusCodes["200"] != 1 || es.Service.Count != 1 || len(es.Series) == 0 || stats.Workers.Workers != 4 {
		t.Fatalf("stats %+v %v", es, err)
	}
	if err := ac.SetFaults(ctx, Faults{ErrorRate: 2}); err == nil {
		t.Fatal("invalid faults accepted")
	}
	if err := ac.SetFaults(ctx, Faults{ExtraLatencyMS: 5, ErrorRate: 0.5, ErrorStatus: 503}); err != nil {
		t.Fatal(err)
	}
	if f, _ := ac.GetFaults(ctx); f.ExtraLatencyMS != 5 || f.ErrorStatus != 503 {
		t.Fatalf("faults %+v", f)
	}
	if err := ac.SetSession(ctx, "s1", false); err != nil {
		t.Fatal(err)
	}
	ac.SetFaults(ctx, Faults{})
	if info, _ := h.session("s1"); info.Enabled || info.Active {
		t.Fatalf("disabled session: %+v", info)
	}
	r := h.do(http.MethodGet, "/metrics", "", nil)
	for _, name := range []string{"fakelaravel_requests_total", "fakelaravel_service_seconds_bucket", "fakelaravel_workers_busy", `endpoint="status_batch"`} {
		if !bytes.Contains(r.body, []byte(name)) {
			t.Fatalf("metrics lack %s", name)
		}
	}
	if err := ac.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := ac.GetState(ctx); len(st.Sessions) != 0 {
		t.Fatal("reset kept sessions")
	}
}

func TestExtraLatencyHoldsWorkersAndShowsInUtilization(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Faults = Faults{ExtraLatencyMS: 300} })
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() { h.postStatuses(fmt.Sprintf("k%d", i), st(fmt.Sprintf("s%d", i), laravel.StatusConnected, 1)) })
	}
	wg.Wait()
	stats := h.srv.Stats()
	if stats.Workers.BusySeconds < 0.6 {
		t.Fatalf("busy %.3fs, want >= 0.6s (2 requests x 300ms)", stats.Workers.BusySeconds)
	}
	if svc := stats.Endpoints[EndpointStatusBatch].Service; svc.Count != 2 || svc.P50MS < 300 {
		t.Fatalf("service histogram %+v", svc)
	}
	busy := 0.0
	for _, p := range stats.Workers.Series {
		busy = max(busy, p.BusyMean)
	}
	if busy == 0 {
		t.Fatalf("worker series never saw a busy worker: %+v", stats.Workers.Series)
	}
}

func TestStatsCanLeaveOutTheSeries(t *testing.T) {
	h := newHarness(t, nil)
	h.postStatuses("k", st("s1", laravel.StatusConnected, 1))
	ac := NewAdminClient(h.ts.URL, testToken, h.ts.Client())
	none, err := ac.GetStatsRecent(t.Context(), 0)
	if err != nil || len(none.Endpoints[EndpointStatusBatch].Series) != 0 || len(none.Workers.Series) != 0 || none.Endpoints[EndpointStatusBatch].Requests != 1 {
		t.Fatalf("series_seconds=0: %+v %v", none.Endpoints[EndpointStatusBatch], err)
	}
	full, _ := ac.GetStats(t.Context())
	if len(full.Endpoints[EndpointStatusBatch].Series) == 0 || len(full.Endpoints[EndpointQR].Series) != 0 {
		t.Fatalf("full series: %d status_batch points, %d qr points", len(full.Endpoints[EndpointStatusBatch].Series), len(full.Endpoints[EndpointQR].Series))
	}
}

// Through HTTP: one worker, a backlog of one, slow requests: the excess gets 502 at once.
func TestFullBacklogAnswers502ThroughHTTP(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Capacity = CapacityModel{Workers: 1, Backlog: 1, BootstrapCPU: 500 * time.Millisecond, ProxyTimeout: time.Minute}
	})
	const n = 6
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			codes[i] = h.do(http.MethodGet, laravel.PathSessionPrefix+"nobody", "", nil).status
		})
	}
	wg.Wait()
	count := map[int]int{}
	for _, c := range codes {
		count[c]++
	}
	// 1 in service + 1 in the backlog are answered (404: unknown session); the rest is refused.
	if count[502] < 2 || count[404] < 1 || count[404]+count[502] != n {
		t.Fatalf("codes %v", codes)
	}
	es := h.srv.Stats().Endpoints[EndpointSession]
	rejected := int64(0)
	for _, p := range es.Series {
		rejected += p.Rejected
	}
	if es.StatusCodes["502"] != int64(count[502]) || rejected != int64(count[502]) || es.Service.Count != int64(count[404]) {
		t.Fatalf("stats %+v", es)
	}
}

// The session lookup (GET) is charged the model's LookupCPU, not the write bootstrap: with a
// bootstrap of an hour a lookup still answers within the proxy timeout.
func TestSessionLookupPaysTheLookupCostNotTheBootstrap(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Capacity = CapacityModel{Workers: 2, Backlog: 8, BootstrapCPU: time.Hour, LookupCPU: time.Millisecond, ProxyTimeout: 30 * time.Second}
	})
	r := h.do(http.MethodGet, laravel.PathSessionPrefix+"s1", "", nil)
	// Charged the bootstrap it would be a 504 after the 30 s proxy timeout.
	if r.status != http.StatusNotFound {
		t.Fatalf("lookup of an unknown session: %d %s, want 404", r.status, r.body)
	}
}
