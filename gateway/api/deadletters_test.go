package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"wagate/gateway/api"
	"wagate/gateway/event"
	"wagate/gateway/outbox"
	"wagate/gateway/session"
	"wagate/gateway/session/sessiontest"
	"wagate/internal/redistest"
)

// countingMetrics records what the dead-letter routes reported.
type countingMetrics struct {
	mu               sync.Mutex
	listed, redriven int
}

func (c *countingMetrics) DeadLettersListed(n int) { c.mu.Lock(); c.listed += n; c.mu.Unlock() }

func (c *countingMetrics) DeadLettersRedriven(n int) { c.mu.Lock(); c.redriven += n; c.mu.Unlock() }

// deadLetterRig is the API in front of a real outbox on miniredis (ob nil: legacy mode).
type deadLetterRig struct {
	t       *testing.T
	h       http.Handler
	ob      *outbox.Outbox
	metrics *countingMetrics
}

func newDeadLetterRig(t *testing.T, batchMode bool, obCfg outbox.Config) *deadLetterRig {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	m, err := session.New(context.Background(), session.Config{Logger: log}, sessiontest.NewDriver(), sessiontest.NewStore(), &sessiontest.Sink{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	r := &deadLetterRig{t: t, metrics: &countingMetrics{}}
	cfg := api.Config{Token: token, Sessions: m, Reader: m, Activity: &activity{}, Logger: log, DeadLetterMetrics: r.metrics}
	if batchMode {
		obCfg.Logger = log
		r.ob, err = outbox.New(context.Background(), redistest.Mini(t).Client(t), obCfg)
		if err != nil {
			t.Fatal(err)
		}
		cfg.DeadLetters = r.ob
	}
	if r.h, err = api.New(cfg); err != nil {
		t.Fatal(err)
	}
	return r
}

// deadLetter appends evs to the outbox, reads them and dead-letters them with reason.
func (r *deadLetterRig) deadLetter(reason string, evs ...event.Event) {
	r.t.Helper()
	ctx := context.Background()
	for _, ev := range evs {
		if _, err := r.ob.Append(ctx, ev); err != nil {
			r.t.Fatal(err)
		}
	}
	entries, err := r.ob.ReadNew(ctx, int64(len(evs)))
	if err != nil || len(entries) != len(evs) {
		r.t.Fatalf("read %d of %d: %v", len(entries), len(evs), err)
	}
	if err := r.ob.DeadLetter(ctx, entries, reason); err != nil {
		r.t.Fatal(err)
	}
}

func (r *deadLetterRig) do(method, path, body string, withToken bool) response {
	r.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if withToken {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	r.h.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Body)
	return response{code: rec.Code, header: rec.Header(), body: b}
}

func statusEvent(sid string, ver int64, state string) event.Event {
	return event.Event{
		ID: fmt.Sprintf("%s-ev-%d", sid, ver), SessionID: sid, Kind: event.KindStatus, Payload: state,
		Version: ver, Priority: event.PriorityOf(event.KindStatus, state), Time: time.Unix(1_700_000_000+ver, 0).UTC(),
	}
}

type deadLetterEntry struct {
	ID        string    `json:"id"`
	OutboxID  string    `json:"outbox_id"`
	SessionID string    `json:"session_id"`
	Kind      string    `json:"kind"`
	Version   int64     `json:"version"`
	EventID   string    `json:"event_id"`
	Reason    string    `json:"reason"`
	Time      time.Time `json:"time"`
	EventTime time.Time `json:"event_time"`
}

type deadLetterPage struct {
	DeadLetters []deadLetterEntry `json:"dead_letters"`
	NextCursor  *string           `json:"next_cursor"`
}

func TestDeadLetterRoutesNeedTheToken(t *testing.T) {
	r := newDeadLetterRig(t, true, outbox.Config{})
	for _, q := range []struct{ method, path, body string }{{"GET", "/dead-letters", ""}, {"POST", "/dead-letters/redrive", "{}"}} {
		resp := r.do(q.method, q.path, q.body, false)
		if resp.code != http.StatusUnauthorized || resp.errorCode(t) != "unauthorized" {
			t.Fatalf("%s %s without a token: %d %s", q.method, q.path, resp.code, resp.body)
		}
	}
}

func TestDeadLetterRoutesSayTheyNeedBatchMode(t *testing.T) {
	r := newDeadLetterRig(t, false, outbox.Config{})
	for _, q := range []struct{ method, path, body string }{{"GET", "/dead-letters", ""}, {"POST", "/dead-letters/redrive", "{}"}} {
		resp := r.do(q.method, q.path, q.body, true)
		if resp.code != http.StatusNotImplemented || resp.errorCode(t) != "dead_letters_unavailable" || !strings.Contains(string(resp.body), "batch") {
			t.Fatalf("%s %s in legacy mode: %d %s", q.method, q.path, resp.code, resp.body)
		}
	}
}

func TestDeadLetterRequestsAreValidated(t *testing.T) {
	r := newDeadLetterRig(t, true, outbox.Config{})
	r.deadLetter("refused", statusEvent("s1", 1, "connected"))
	tests := []struct {
		name, method, path, body string
		code                     int
		errCode                  string
	}{
		{"limit zero", "GET", "/dead-letters?limit=0", "", 400, "invalid_limit"},
		{"limit too large", "GET", "/dead-letters?limit=1001", "", 400, "invalid_limit"},
		{"limit not a number", "GET", "/dead-letters?limit=ten", "", 400, "invalid_limit"},
		{"cursor not an id", "GET", "/dead-letters?after=s1", "", 400, "invalid_cursor"},
		{"list by POST", "POST", "/dead-letters", "{}", 405, "method_not_allowed"},
		{"redrive by GET", "GET", "/dead-letters/redrive", "", 405, "method_not_allowed"},
		{"empty body", "POST", "/dead-letters/redrive", "", 400, "invalid_json"},
		{"null body", "POST", "/dead-letters/redrive", "null", 400, "invalid_json"},
		{"array body", "POST", "/dead-letters/redrive", "[]", 400, "invalid_json"},
		{"misspelt filter", "POST", "/dead-letters/redrive", `{"session":"s1"}`, 400, "invalid_json"},
		{"two objects", "POST", "/dead-letters/redrive", `{}{}`, 400, "invalid_json"},
		{"bad session id", "POST", "/dead-letters/redrive", `{"session_id":"no spaces"}`, 400, "invalid_session_id"},
		{"empty session id", "POST", "/dead-letters/redrive", `{"session_id":""}`, 400, "invalid_session_id"},
		{"empty reason filter", "POST", "/dead-letters/redrive", `{"reason_contains":""}`, 400, "invalid_reason_filter"},
		{"long reason filter", "POST", "/dead-letters/redrive", `{"reason_contains":"` + strings.Repeat("x", 257) + `"}`, 400, "invalid_reason_filter"},
		{"limit zero on redrive", "POST", "/dead-letters/redrive", `{"limit":0}`, 400, "invalid_limit"},
		{"limit too large on redrive", "POST", "/dead-letters/redrive", `{"limit":10001}`, 400, "invalid_limit"},
		{"session id of the wrong type", "POST", "/dead-letters/redrive", `{"session_id":7}`, 400, "invalid_json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := r.do(tc.method, tc.path, tc.body, true)
			if resp.code != tc.code || resp.errorCode(t) != tc.errCode {
				t.Fatalf("%d %s, want %d %s", resp.code, resp.body, tc.code, tc.errCode)
			}
		})
	}
	// Nothing above re-drove anything.
	if st, _ := r.ob.Stats(context.Background()); st.DeadLetters != 1 || st.Length != 0 {
		t.Fatalf("after refused requests: %+v, want the dead letter untouched", st)
	}
}

func TestDeadLettersAreListedInPagesAndRedrivenBySession(t *testing.T) {
	r := newDeadLetterRig(t, true, outbox.Config{})
	a1, b2, a3 := statusEvent("a", 1, "connected"), statusEvent("b", 2, "logged_out"), statusEvent("a", 3, "disconnected")
	r.deadLetter("item refused: unknown session", a1, b2)
	r.deadLetter("item refused alone after a 422", a3)

	var got []deadLetterEntry
	cursor := ""
	for pages := 0; ; pages++ {
		resp := r.do("GET", "/dead-letters?limit=2&after="+cursor, "", true)
		var page deadLetterPage
		if resp.code != 200 || json.Unmarshal(resp.body, &page) != nil || page.NextCursor == nil {
			t.Fatalf("page %d: %d %s", pages, resp.code, resp.body)
		}
		got = append(got, page.DeadLetters...)
		if *page.NextCursor == "" {
			if pages != 1 {
				t.Fatalf("%d pages of 2 for 3 dead letters, want 2", pages+1)
			}
			break
		}
		cursor = *page.NextCursor
	}
	if len(got) != 3 {
		t.Fatalf("listed %d dead letters, want 3", len(got))
	}
	for i, ev := range []event.Event{a1, b2, a3} {
		d := got[i]
		if d.SessionID != ev.SessionID || d.Kind != "status" || d.Version != ev.Version || d.EventID != ev.ID ||
			!d.EventTime.Equal(ev.Time) || d.ID == "" || d.OutboxID == "" || d.Time.IsZero() || d.Reason == "" {
			t.Fatalf("entry %d = %+v, want the event %+v with its reason and times", i, d, ev)
		}
	}
	if r.metrics.listed != 3 {
		t.Fatalf("listed metric %d, want 3", r.metrics.listed)
	}

	resp := r.do("POST", "/dead-letters/redrive", `{"session_id":"a"}`, true)
	var res outbox.RedriveResult
	if resp.code != 200 || json.Unmarshal(resp.body, &res) != nil || res != (outbox.RedriveResult{Matched: 2, Redriven: 2}) {
		t.Fatalf("re-drive of session a: %d %s", resp.code, resp.body)
	}
	entries, err := r.ob.ReadNew(context.Background(), 10)
	if err != nil || len(entries) != 2 || entries[0].Event != a1 || entries[1].Event != a3 {
		t.Fatalf("outbox after the re-drive: %+v, %v; want a's original events", entries, err)
	}
	resp = r.do("POST", "/dead-letters/redrive", `{"reason_contains":"UNKNOWN"}`, true)
	if resp.code != 200 || json.Unmarshal(resp.body, &res) != nil || res.Redriven != 1 {
		t.Fatalf("re-drive by reason: %d %s", resp.code, resp.body)
	}
	resp = r.do("POST", "/dead-letters/redrive", `{}`, true)
	if resp.code != 200 || json.Unmarshal(resp.body, &res) != nil || res != (outbox.RedriveResult{}) {
		t.Fatalf("re-drive with nothing left: %d %s", resp.code, resp.body)
	}
	if r.metrics.redriven != 3 {
		t.Fatalf("redriven metric %d, want 3", r.metrics.redriven)
	}
	resp = r.do("GET", "/dead-letters", "", true)
	var page deadLetterPage
	if resp.code != 200 || json.Unmarshal(resp.body, &page) != nil || len(page.DeadLetters) != 0 || page.DeadLetters == nil {
		t.Fatalf("list after re-driving everything: %d %s, want an empty list", resp.code, resp.body)
	}
}

func TestRedriveIntoAFullOutboxAnswers503AndKeepsTheDeadLetters(t *testing.T) {
	r := newDeadLetterRig(t, true, outbox.Config{Max: 1, AppendTimeout: 50 * time.Millisecond})
	r.deadLetter("refused", statusEvent("s1", 1, "connected"))
	if _, err := r.ob.Append(context.Background(), statusEvent("s2", 1, "connected")); err != nil {
		t.Fatal(err)
	}
	resp := r.do("POST", "/dead-letters/redrive", `{}`, true)
	if resp.code != http.StatusServiceUnavailable || resp.errorCode(t) != "outbox_full" {
		t.Fatalf("re-drive into a full outbox: %d %s", resp.code, resp.body)
	}
	if st, _ := r.ob.Stats(context.Background()); st.DeadLetters != 1 {
		t.Fatalf("dead letters after the failed re-drive: %d, want 1", st.DeadLetters)
	}
}
