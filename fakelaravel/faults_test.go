package fakelaravel

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"wagate/gateway/laravel"
)

func TestFaultsValidate(t *testing.T) {
	win := func(w FaultWindow) Faults { return Faults{Windows: []FaultWindow{w}} }
	for _, tc := range []struct {
		name    string
		faults  Faults
		wantErr string // "" means valid
	}{
		{"zero value", Faults{}, ""},
		{"flat fields", Faults{ErrorRate: 0.1, ErrorStatus: 503, RetryAfterS: 3, ExtraLatencyMS: 5, LostResponseRate: 0.2, LostResponseMode: LostResponseEmpty}, ""},
		{"flat error status 404", Faults{ErrorRate: 1, ErrorStatus: 404}, ""},
		{"flat error status 200", Faults{ErrorRate: 1, ErrorStatus: 200}, "error_status 200 is not an HTTP status in 300-599"},
		{"flat error rate above 1", Faults{ErrorRate: 1.5}, "error_rate 1.5 outside [0, 1]"},
		{"flat down window without duration", Faults{DownWindows: []DownWindow{{StartAfterMS: 5}}}, "duration_ms > 0"},
		{"status 503 with hours of Retry-After", win(FaultWindow{Kind: FaultStatus, Rate: 1, Status: 503, RetryAfterS: 7200}), ""},
		{"status 429 with HTTP-date Retry-After", win(FaultWindow{Kind: FaultStatus, Rate: 0.5, Status: 429, RetryAfterS: 60, RetryAfterHTTPDate: true}), ""},
		{"status 307 default location", win(FaultWindow{Kind: FaultStatus, Rate: 1, Status: 307}), ""},
		{"status 301 loopback location", win(FaultWindow{Kind: FaultStatus, Rate: 1, Status: 301, Location: "http://127.0.0.2:1/elsewhere"}), ""},
		{"status 308 localhost location", win(FaultWindow{Kind: FaultStatus, Rate: 1, Status: 308, Location: "https://localhost:9/x"}), ""},
		{"status limited to an endpoint", win(FaultWindow{Kind: FaultStatus, Rate: 1, Status: 500, Endpoints: []string{EndpointStatusBatch}}), ""},
		{"status 200", win(FaultWindow{Kind: FaultStatus, Rate: 1, Status: 200}), "status must be an HTTP status in 300-599"},
		{"status 600", win(FaultWindow{Kind: FaultStatus, Rate: 1, Status: 600}), "status must be an HTTP status in 300-599"},
		{"status without rate", win(FaultWindow{Kind: FaultStatus, Status: 500}), "rate 0 must be in (0, 1]"},
		{"rate above 1", win(FaultWindow{Kind: FaultStatus, Rate: 1.1, Status: 500}), "rate 1.1 must be in (0, 1]"},
		{"location off loopback", win(FaultWindow{Kind: FaultStatus, Rate: 1, Status: 302, Location: "http://example.com/"}), "must be on a loopback host"},
		{"relative location", win(FaultWindow{Kind: FaultStatus, Rate: 1, Status: 302, Location: "/elsewhere"}), "absolute http or https URL"},
		{"location on a 5xx", win(FaultWindow{Kind: FaultStatus, Rate: 1, Status: 500, Location: "http://127.0.0.1/"}), "location applies only to a 3xx status"},
		{"HTTP-date without seconds", win(FaultWindow{Kind: FaultStatus, Rate: 1, Status: 503, RetryAfterHTTPDate: true}), "retry_after_http_date needs retry_after_s > 0"},
		{"negative Retry-After", win(FaultWindow{Kind: FaultStatus, Rate: 1, Status: 503, RetryAfterS: -1}), "retry_after_s -1 is negative"},
		{"unknown endpoint", win(FaultWindow{Kind: FaultStatus, Rate: 1, Status: 500, Endpoints: []string{"status-batch"}}), `endpoint "status-batch" is not one of`},
		{"unknown kind", win(FaultWindow{Kind: "teapot", Rate: 1}), `kind "teapot" is not one of`},
		{"negative start", win(FaultWindow{Kind: FaultLatency, Rate: 1, LatencyMS: 5, StartAfterMS: -1}), "start_after_ms -1 is negative"},
		{"negative duration", win(FaultWindow{Kind: FaultLatency, Rate: 1, LatencyMS: 5, DurationMS: -1}), "duration_ms -1 is negative"},
		{"latency", win(FaultWindow{Kind: FaultLatency, Rate: 1, LatencyMS: 250, StartAfterMS: 1000, DurationMS: 5000}), ""},
		{"latency without latency_ms", win(FaultWindow{Kind: FaultLatency, Rate: 1}), "latency_ms must be > 0"},
		{"parameter of another kind", win(FaultWindow{Kind: FaultLatency, Rate: 1, LatencyMS: 5, Status: 500}), "status applies only to [status] windows"},
		{"down", win(FaultWindow{Kind: FaultDown, StartAfterMS: 10, DurationMS: 20}), ""},
		{"down with a rate", win(FaultWindow{Kind: FaultDown, Rate: 1, DurationMS: 20}), "rate does not apply to down windows"},
		{"down for an endpoint", win(FaultWindow{Kind: FaultDown, DurationMS: 20, Endpoints: []string{EndpointQR}}), "endpoints do not apply to down windows"},
		{"lost response empty", win(FaultWindow{Kind: FaultLostResponse, Rate: 0.3, LostResponseMode: LostResponseEmpty}), ""},
		{"lost response bad mode", win(FaultWindow{Kind: FaultLostResponse, Rate: 0.3, LostResponseMode: "reset"}), `lost_response_mode "reset" is not`},
		{"garbage body", win(FaultWindow{Kind: FaultGarbageBody, Rate: 1}), ""},
		{"unaccounted failures", win(FaultWindow{Kind: FaultUnaccountedFailures, Rate: 1, Items: 3}), ""},
		{"unaccounted negative items", win(FaultWindow{Kind: FaultUnaccountedFailures, Rate: 1, Items: -2}), "items -2 is negative"},
		{"refuse listed sessions", win(FaultWindow{Kind: FaultRefuseItems, Rate: 1, Sessions: []string{"s1"}}), ""},
		{"refuse a share of sessions", win(FaultWindow{Kind: FaultRefuseItems, Rate: 1, SessionFraction: 0.1, SessionSeed: 7}), ""},
		{"refuse nobody", win(FaultWindow{Kind: FaultRefuseItems, Rate: 1}), "name the refused sessions"},
		{"refuse more than all", win(FaultWindow{Kind: FaultRefuseItems, Rate: 1, SessionFraction: 1.5}), "session_fraction 1.5 outside [0, 1]"},
		{"second window named in the error", Faults{Windows: []FaultWindow{{Kind: FaultGarbageBody, Rate: 1}, {Kind: FaultGarbageBody}}}, "windows[1]: garbage_body from 0s until replaced: rate 0 must be in (0, 1]"},
		{"duration in the message", win(FaultWindow{Kind: FaultLatency, Rate: 1, StartAfterMS: 10_000, DurationMS: 30_000}), "latency from 10s for 30s: latency_ms must be > 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.faults.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("valid faults refused: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("invalid faults accepted, want %q", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("error %q does not say %q", err, tc.wantErr)
			}
		})
	}
}

func TestFaultWindowsTakeEffectOnlyInTheirPeriodAndEndpoints(t *testing.T) {
	set := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	at := func(ms int64) time.Time { return set.Add(time.Duration(ms) * time.Millisecond) }
	for _, tc := range []struct {
		name     string
		window   FaultWindow
		atMS     int64
		endpoint string
		want     bool
	}{
		{"before the start", FaultWindow{StartAfterMS: 1000, DurationMS: 2000}, 999, EndpointStatusBatch, false},
		{"at the start", FaultWindow{StartAfterMS: 1000, DurationMS: 2000}, 1000, EndpointStatusBatch, true},
		{"last moment", FaultWindow{StartAfterMS: 1000, DurationMS: 2000}, 2999, EndpointStatusBatch, true},
		{"at the end", FaultWindow{StartAfterMS: 1000, DurationMS: 2000}, 3000, EndpointStatusBatch, false},
		{"no duration lasts until replaced", FaultWindow{StartAfterMS: 1000}, 86_400_000, EndpointStatusBatch, true},
		{"listed endpoint", FaultWindow{Endpoints: []string{EndpointQRBatch, EndpointStatusBatch}}, 0, EndpointStatusBatch, true},
		{"other endpoint", FaultWindow{Endpoints: []string{EndpointQRBatch}}, 0, EndpointStatusBatch, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := tc.window
			w.Kind, w.Rate, w.Status = FaultStatus, 1, 503
			fs := newFaultState(Faults{Windows: []FaultWindow{w}}, set, 1)
			if got := fs.drawStatus(at(tc.atMS), tc.endpoint) != nil; got != tc.want {
				t.Fatalf("status window in effect = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDownWindowsFromBothVocabulariesRefuseAndReportTheNextChange(t *testing.T) {
	set := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	fs := newFaultState(Faults{
		DownWindows: []DownWindow{{StartAfterMS: 1000, DurationMS: 1000}},
		Windows:     []FaultWindow{{Kind: FaultDown, StartAfterMS: 5000, DurationMS: 1000}, {Kind: FaultLatency, Rate: 1, LatencyMS: 1}},
	}, set, 1)
	for _, tc := range []struct {
		atMS     int64
		wantDown bool
		nextMS   int64 // -1: never changes again
	}{
		{0, false, 1000}, {1500, true, 2000}, {2000, false, 5000}, {5500, true, 6000}, {6000, false, -1},
	} {
		down, next := fs.down(set.Add(time.Duration(tc.atMS) * time.Millisecond))
		wantNext := time.Time{}
		if tc.nextMS >= 0 {
			wantNext = set.Add(time.Duration(tc.nextMS) * time.Millisecond)
		}
		if down != tc.wantDown || !next.Equal(wantNext) {
			t.Errorf("at %d ms: down %v next %v, want %v %v", tc.atMS, down, next, tc.wantDown, wantNext)
		}
	}
}

func TestRefusesSessionIsSeededAndProportional(t *testing.T) {
	w := FaultWindow{Kind: FaultRefuseItems, Rate: 1, SessionFraction: 0.3, SessionSeed: 42, Sessions: []string{"listed"}}
	other := w
	other.SessionSeed = 43
	chosen, differ := 0, 0
	const n = 10_000
	for i := range n {
		id := fmt.Sprintf("session-%d", i)
		if w.RefusesSession(id) {
			chosen++
		}
		if w.RefusesSession(id) != other.RefusesSession(id) {
			differ++
		}
		if first, again := w.RefusesSession(id), w.RefusesSession(id); first != again {
			t.Fatalf("%s: the choice is not a function of the id", id)
		}
	}
	if share := float64(chosen) / n; share < 0.27 || share > 0.33 {
		t.Fatalf("share chosen %.3f, want about 0.3", share)
	}
	if differ < n/10 {
		t.Fatalf("another seed changes only %d of %d choices", differ, n)
	}
	if !w.RefusesSession("listed") || (FaultWindow{Sessions: []string{"a"}}).RefusesSession("b") {
		t.Fatal("listed sessions are chosen, others only by the fraction")
	}
}

func (h *harness) setFaults(f Faults) {
	h.t.Helper()
	if err := h.srv.SetFaults(f); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) stateOf(id string) (SessionState, bool) {
	h.t.Helper()
	state, err := h.srv.State(h.t.Context())
	if err != nil {
		h.t.Fatal(err)
	}
	for _, s := range state.Sessions {
		if s.SessionID == id {
			return s, true
		}
	}
	return SessionState{}, false
}

func TestStatusWindowAnswersAnyStatusWithoutApplying(t *testing.T) {
	for _, tc := range []struct {
		window         FaultWindow
		wantRetryAfter string // "date": an HTTP-date
		wantLocation   string
	}{
		{window: FaultWindow{Status: 500}},
		{window: FaultWindow{Status: 502}},
		{window: FaultWindow{Status: 503, RetryAfterS: 7200}, wantRetryAfter: "7200"},
		{window: FaultWindow{Status: 504}},
		{window: FaultWindow{Status: 401}},
		{window: FaultWindow{Status: 403}},
		{window: FaultWindow{Status: 404}},
		{window: FaultWindow{Status: 405}},
		{window: FaultWindow{Status: 408}},
		{window: FaultWindow{Status: 410}},
		{window: FaultWindow{Status: 421}},
		{window: FaultWindow{Status: 429, RetryAfterS: 86_400, RetryAfterHTTPDate: true}, wantRetryAfter: "date"},
		{window: FaultWindow{Status: 301}, wantLocation: DefaultRedirectLocation},
		{window: FaultWindow{Status: 302, Location: "http://127.0.0.3:9/other"}, wantLocation: "http://127.0.0.3:9/other"},
		{window: FaultWindow{Status: 307, RetryAfterS: 5}, wantRetryAfter: "5", wantLocation: DefaultRedirectLocation},
		{window: FaultWindow{Status: 308}, wantLocation: DefaultRedirectLocation},
	} {
		t.Run(fmt.Sprint(tc.window.Status), func(t *testing.T) {
			w := tc.window
			w.Kind, w.Rate = FaultStatus, 1
			h := newHarness(t, func(c *Config) { c.Faults = Faults{Windows: []FaultWindow{w}} })
			// A client following the redirect would fail to connect: look at the 3xx itself.
			h.ts.Client().CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			r, _ := h.postStatuses("k1", st("s1", laravel.StatusConnected, 1))
			if r.status != w.Status {
				t.Fatalf("status %d, want %d", r.status, w.Status)
			}
			var msg laravel.ErrorBody
			r.json(t, &msg)
			if msg.Message == "" {
				t.Fatalf("no Laravel-shaped message: %s", r.body)
			}
			switch ra := r.header.Get("Retry-After"); tc.wantRetryAfter {
			case "date":
				when, err := http.ParseTime(ra)
				if err != nil || time.Until(when) < 86_390*time.Second || time.Until(when) > 86_410*time.Second {
					t.Fatalf("Retry-After %q is not an HTTP-date a day ahead (%v)", ra, err)
				}
			default:
				if ra != tc.wantRetryAfter {
					t.Fatalf("Retry-After %q, want %q", ra, tc.wantRetryAfter)
				}
			}
			if loc := r.header.Get("Location"); loc != tc.wantLocation {
				t.Fatalf("Location %q, want %q", loc, tc.wantLocation)
			}
			if _, applied := h.stateOf("s1"); applied {
				t.Fatal("the batch was applied behind an injected error")
			}
			stats := h.srv.Stats()
			if got := stats.Injected[InjectedKey(FaultStatus, fmt.Sprint(w.Status))]; got != 1 || stats.InjectedErrors != 1 {
				t.Fatalf("injected %v, injected errors %d; want 1 of status:%d", stats.Injected, stats.InjectedErrors, w.Status)
			}
			h.setFaults(Faults{})
			if r, _ := h.postStatuses("k1", st("s1", laravel.StatusConnected, 1)); r.status != 200 {
				t.Fatalf("the retry under the same key after the window: %d %s", r.status, r.body)
			}
			if s, ok := h.stateOf("s1"); !ok || s.StatusVersion != 1 {
				t.Fatalf("the retry did not apply: %+v", s)
			}
		})
	}
}

func TestGarbageBodyAppliesThenAnswersUndecodable(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Faults = Faults{Windows: []FaultWindow{{Kind: FaultGarbageBody, Rate: 1}}}
	})
	r := h.do(http.MethodPost, laravel.PathStatusBatch, statusBatchBody(st("s1", laravel.StatusConnected, 2)), map[string]string{laravel.HeaderIdempotencyKey: "g"})
	var res laravel.BatchResult
	if r.status != 200 || json.Unmarshal(r.body, &res) == nil {
		t.Fatalf("want 200 with an undecodable body, got %d %q", r.status, r.body)
	}
	if s, ok := h.stateOf("s1"); !ok || s.StatusVersion != 2 {
		t.Fatalf("the batch was not applied: %+v", s)
	}
	h.setFaults(Faults{})
	r, res = h.postStatuses("g", st("s1", laravel.StatusConnected, 2))
	if r.status != 200 || res.Updated != 1 || r.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("the retry is not the stored answer: %d %s", r.status, r.body)
	}
	if got := h.srv.Stats().Injected[string(FaultGarbageBody)]; got != 1 {
		t.Fatalf("garbage bodies counted %d", got)
	}
}

func TestUnaccountedFailuresLeaveItemsUnappliedAndUnnamed(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Faults = Faults{Windows: []FaultWindow{{Kind: FaultUnaccountedFailures, Rate: 1, Items: 2}}}
	})
	r, res := h.postStatuses("u", st("s1", laravel.StatusConnected, 1), st("s2", laravel.StatusConnected, 1), st("s3", laravel.StatusConnected, 1))
	if r.status != 200 || res.Updated != 1 || res.Failed != 2 || len(res.Errors) != 0 || res.Success {
		t.Fatalf("want 1 updated and failed 2 with no named error, got %d %s", r.status, r.body)
	}
	state, err := h.srv.State(t.Context())
	if err != nil || len(state.Sessions) != 1 {
		t.Fatalf("want exactly the accounted item applied, got %+v %v", state.Sessions, err)
	}
	if st := h.srv.Stats(); st.UnaccountedItems != 2 || st.Injected[string(FaultUnaccountedFailures)] != 1 || st.RefusedItems != 0 {
		t.Fatalf("stats: unaccounted %d injected %v refused %d", st.UnaccountedItems, st.Injected, st.RefusedItems)
	}
	// A batch smaller than Items leaves all of its items out.
	if _, res := h.postStatuses("u2", st("s9", laravel.StatusConnected, 1)); res.Failed != 1 || res.Updated != 0 {
		t.Fatalf("one-item batch: %+v", res)
	}
}

func TestRefusedItemsAreNamedNotAppliedAndRecordedPerSession(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.AdminToken = "admin"
		c.Faults = Faults{Windows: []FaultWindow{{Kind: FaultRefuseItems, Rate: 1, Sessions: []string{"s2"}, Endpoints: []string{EndpointStatusBatch}}}}
	})
	r, res := h.postStatuses("r", st("s1", laravel.StatusConnected, 5), st("s2", laravel.StatusConnected, 5), st("s3", laravel.StatusConnected, 5))
	want := []laravel.ItemError{{SessionID: "s2", Error: RefusedItemError}}
	if r.status != 200 || res.Updated != 2 || res.Failed != 1 || fmt.Sprint(res.Errors) != fmt.Sprint(want) {
		t.Fatalf("want s2 refused by name, got %d %s", r.status, r.body)
	}
	if _, ok := h.stateOf("s2"); ok {
		t.Fatal("the refused item was applied")
	}
	if _, ok := h.stateOf("s3"); !ok {
		t.Fatal("an item of another session was not applied")
	}
	// The QR endpoint is not in the window; a replay refuses nothing again.
	if r := h.do(http.MethodPost, laravel.PathQRBatch, qrBatchBody(qr("s2", "code", 1)), map[string]string{laravel.HeaderIdempotencyKey: "q"}); r.status != 200 || bytes.Contains(r.body, []byte("refused")) {
		t.Fatalf("qr batch outside the window: %d %s", r.status, r.body)
	}
	if r2, _ := h.postStatuses("r", st("s1", laravel.StatusConnected, 5), st("s2", laravel.StatusConnected, 5), st("s3", laravel.StatusConnected, 5)); !bytes.Equal(r2.body, r.body) {
		t.Fatalf("replay %s differs from %s", r2.body, r.body)
	}
	refusals, err := NewAdminClient(h.ts.URL, "admin", h.ts.Client()).GetRefusals(t.Context())
	wantItems := []RefusedItem{{SessionID: "s2", Endpoint: EndpointStatusBatch, Version: 5}}
	if err != nil || refusals.Total != 1 || refusals.BySession["s2"] != 1 || len(refusals.BySession) != 1 || fmt.Sprint(refusals.Items) != fmt.Sprint(wantItems) {
		t.Fatalf("refusals %+v %v", refusals, err)
	}
	if st := h.srv.Stats(); st.RefusedItems != 1 || st.Injected[string(FaultRefuseItems)] != 1 {
		t.Fatalf("stats: refused %d injected %v", st.RefusedItems, st.Injected)
	}
	m := h.do(http.MethodGet, "/metrics", "", nil)
	for _, line := range []string{`fakelaravel_withheld_items_total{kind="refuse_items"} 1`, `fakelaravel_injected_faults_total{detail="",kind="refuse_items"} 1`} {
		if !bytes.Contains(m.body, []byte(line)) {
			t.Fatalf("metrics lack %s", line)
		}
	}
	if err := h.srv.Reset(t.Context()); err != nil {
		t.Fatal(err)
	}
	if h.srv.Refusals().Total != 0 {
		t.Fatal("reset kept the refusals")
	}
}

func TestLostResponseAndLatencyWindowsThroughHTTP(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Faults = Faults{Windows: []FaultWindow{
			{Kind: FaultLostResponse, Rate: 1, LostResponseMode: LostResponseEmpty, Endpoints: []string{EndpointStatusBatch}},
			{Kind: FaultLatency, Rate: 1, LatencyMS: 30, Endpoints: []string{EndpointQRBatch}},
		}}
	})
	r := h.do(http.MethodPost, laravel.PathStatusBatch, statusBatchBody(st("s1", laravel.StatusConnected, 1)), map[string]string{laravel.HeaderIdempotencyKey: "l"})
	if r.status != 200 || len(r.body) != 0 {
		t.Fatalf("want 200 without body, got %d %q", r.status, r.body)
	}
	if _, ok := h.stateOf("s1"); !ok {
		t.Fatal("the write behind the lost response was not applied")
	}
	start := time.Now()
	if r := h.do(http.MethodPost, laravel.PathQRBatch, qrBatchBody(qr("s1", "c", 1)), map[string]string{laravel.HeaderIdempotencyKey: "q"}); r.status != 200 || len(r.body) == 0 {
		t.Fatalf("qr batch: %d %q", r.status, r.body)
	}
	if took := time.Since(start); took < 30*time.Millisecond {
		t.Fatalf("the latency window held the worker only %v", took)
	}
	inj := h.srv.Stats().Injected
	if inj[InjectedKey(FaultLostResponse, LostResponseEmpty)] != 1 || inj[string(FaultLatency)] != 1 || len(inj) != 2 {
		t.Fatalf("injected %v", inj)
	}
}

func TestItemFaultsCannotBeSetInFrontOfARealApp(t *testing.T) {
	h := newHarness(t, nil)
	h.srv.upstream = &upstreamApp{} // only whether it is set matters to SetFaults
	defer func() { h.srv.upstream = nil }()
	for _, kind := range []FaultKind{FaultRefuseItems, FaultUnaccountedFailures} {
		w := FaultWindow{Kind: kind, Rate: 1}
		if kind == FaultRefuseItems {
			w.Sessions = []string{"s1"}
		}
		if err := h.srv.SetFaults(Faults{Windows: []FaultWindow{w}}); err == nil {
			t.Fatalf("%s accepted in front of a real app", kind)
		}
	}
}

func TestFaultWindowsAffectTheirRateOfRequests(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	ids := []string{"s1"}
	for _, tc := range []struct {
		window FaultWindow
		draw   func(fs *faultState) bool
	}{
		{FaultWindow{Kind: FaultStatus, Status: 503}, func(fs *faultState) bool { return fs.drawStatus(now, EndpointStatusBatch) != nil }},
		{FaultWindow{Kind: FaultLatency, LatencyMS: 5}, func(fs *faultState) bool { _, n := fs.drawLatency(now, EndpointStatusBatch); return n > 0 }},
		{FaultWindow{Kind: FaultLostResponse}, func(fs *faultState) bool { lost, _ := fs.drawLost(now, EndpointStatusBatch); return lost }},
		{FaultWindow{Kind: FaultGarbageBody}, func(fs *faultState) bool { return fs.drawGarbage(now, EndpointStatusBatch) }},
		{FaultWindow{Kind: FaultUnaccountedFailures}, func(fs *faultState) bool {
			f := fs.planBatch(now, EndpointStatusBatch, ids)
			return f != nil && f[0] == itemUnaccounted
		}},
		{FaultWindow{Kind: FaultRefuseItems, Sessions: ids}, func(fs *faultState) bool {
			f := fs.planBatch(now, EndpointStatusBatch, ids)
			return f != nil && f[0] == itemRefused
		}},
	} {
		t.Run(string(tc.window.Kind), func(t *testing.T) {
			for _, rate := range []float64{0.3, 1} {
				w := tc.window
				w.Rate = rate
				fs := newFaultState(Faults{Windows: []FaultWindow{w}}, now, 7)
				const n = 4000
				hits := 0
				for range n {
					if tc.draw(fs) {
						hits++
					}
				}
				if share := float64(hits) / n; share < rate-0.04 || share > rate+0.04 {
					t.Fatalf("rate %v affected %.3f of the requests", rate, share)
				}
			}
		})
	}
}

func TestItemFaultsWithholdDistinctItemsOfOneBatch(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	ids := []string{"a", "b", "c", "d", "e"}
	fs := newFaultState(Faults{Windows: []FaultWindow{
		{Kind: FaultRefuseItems, Rate: 1, Sessions: []string{"b", "d"}},
		{Kind: FaultUnaccountedFailures, Rate: 1, Items: 2},
	}}, now, 3)
	for range 50 {
		fates := fs.planBatch(now, EndpointStatusBatch, ids)
		count := map[itemFate]int{}
		for i, f := range fates {
			count[f]++
			if (ids[i] == "b" || ids[i] == "d") != (f == itemRefused) {
				t.Fatalf("fates %v: only b and d are refused", fates)
			}
		}
		if count[itemRefused] != 2 || count[itemUnaccounted] != 2 || count[itemApplied] != 1 {
			t.Fatalf("fates %v: want 2 refused, 2 unaccounted among the others, 1 applied", fates)
		}
	}
	if fs.planBatch(now, EndpointStatusBatch, nil) != nil {
		t.Fatal("an empty batch has no fates")
	}
}

func TestRefusedLegacyWriteIs422NamingTheSession(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Faults = Faults{Windows: []FaultWindow{{Kind: FaultRefuseItems, Rate: 1, Sessions: []string{"s2"}}}}
	})
	body := func(id string) string {
		b, _ := json.Marshal(laravel.StatusUpdate{SessionID: id, EstadoQR: laravel.StatusConnected})
		return string(b)
	}
	r := h.do(http.MethodPost, laravel.PathStatus, body("s2"), nil)
	var verr laravel.ValidationError
	r.json(t, &verr)
	if r.status != http.StatusUnprocessableEntity || fmt.Sprint(verr.Errors["session_id"]) != fmt.Sprint([]string{RefusedItemError}) {
		t.Fatalf("want 422 naming session_id, got %d %s", r.status, r.body)
	}
	if _, ok := h.stateOf("s2"); ok {
		t.Fatal("the refused legacy write was applied")
	}
	if r := h.do(http.MethodPost, laravel.PathStatus, body("s1"), nil); r.status != 200 {
		t.Fatalf("another session's legacy write: %d %s", r.status, r.body)
	}
	want := []RefusedItem{{SessionID: "s2", Endpoint: EndpointStatus}}
	if got := h.srv.Refusals(); got.Total != 1 || fmt.Sprint(got.Items) != fmt.Sprint(want) {
		t.Fatalf("refusals %+v", got)
	}
}
