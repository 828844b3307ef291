package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"wagate/gateway/api"
	"wagate/gateway/session"
	"wagate/gateway/session/sessiontest"
)

// locator is a replica's view of who holds each session, changed by the test.
type locator struct {
	mu    sync.Mutex
	where map[string]api.Location
	err   error
	calls int
}

func (l *locator) Locate(_ context.Context, id string) (api.Location, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	return l.where[id], l.err
}

func (l *locator) set(id string, loc api.Location) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.where[id] = loc
}

// replica is one gateway's API on a real loopback server, with its own session manager.
type replica struct {
	t        *testing.T
	srv      *httptest.Server
	m        *session.Manager
	driver   *sessiontest.Driver
	activity *activity
	loc      *locator
	logs     *syncBuffer
	mu       sync.Mutex
	received []http.Header // headers of every request that reached this replica
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newReplica(t *testing.T, forwardReads bool) *replica {
	t.Helper()
	r := &replica{t: t, driver: sessiontest.NewDriver(), activity: &activity{active: map[string]bool{}},
		loc: &locator{where: map[string]api.Location{}}, logs: &syncBuffer{}}
	log := slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m, err := session.New(context.Background(), session.Config{Logger: log}, r.driver, sessiontest.NewStore(), &sessiontest.Sink{})
	if err != nil {
		t.Fatal(err)
	}
	r.m = m
	h, err := api.New(api.Config{Token: token, Sessions: m, Reader: m, Activity: r.activity, Logger: log,
		Locator: r.loc, ForwardReads: forwardReads})
	if err != nil {
		t.Fatal(err)
	}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.received = append(r.received, req.Header.Clone())
		r.mu.Unlock()
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(func() {
		r.srv.Close()
		_ = m.Close(context.Background())
	})
	return r
}

func (r *replica) requests() []http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]http.Header(nil), r.received...)
}

// call makes a real HTTP request to the replica with the API token (or the given one).
func (r *replica) call(method, path, body string, tok ...string) response {
	r.t.Helper()
	req, err := http.NewRequest(method, r.srv.URL+path, strings.NewReader(body))
	if err != nil {
		r.t.Fatal(err)
	}
	bearer := token
	if len(tok) > 0 {
		bearer = tok[0]
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatal(err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: b}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Any replica takes any request: start, QR read, send and logout of a session another replica
// holds reach the holder with the client's token and a hop mark, and nothing happens here.
func TestRequestsForASessionHeldElsewhereAreServedByItsHolder(t *testing.T) {
	a, b := newReplica(t, true), newReplica(t, true)
	a.loc.set("s1", api.Location{URL: b.srv.URL})
	b.loc.set("s1", api.Location{Self: true})

	resp := a.call("POST", "/sessions", `{"session_id":"s1"}`)
	if v := resp.json(t); resp.code != 200 || v["session_id"] != "s1" || v["status"] != "pending" {
		t.Fatalf("start through a: %d %s", resp.code, resp.body)
	}
	if b.driver.Opens() != 1 || a.driver.Opens() != 0 {
		t.Fatalf("the holder b must open the session, a nothing: opens a=%d b=%d", a.driver.Opens(), b.driver.Opens())
	}
	if resp := a.call("GET", "/sessions/s1/qr", ""); resp.code != 200 || resp.json(t)["qr"] != "code-1" {
		t.Fatalf("QR through a: %d %s", resp.code, resp.body)
	}

	b.driver.Conn("s1").Scan()
	waitFor(t, "s1 connected on b", func() bool {
		info, err := b.m.Get(context.Background(), "s1")
		return err == nil && info.Connected
	})
	b.activity.mu.Lock()
	b.activity.active["s1"] = true
	b.activity.mu.Unlock()
	resp = a.call("POST", "/sessions/s1/messages", `{"to":"+4915112345678","text":"hello from a"}`)
	if resp.code != 200 || resp.json(t)["message_id"] == "" {
		t.Fatalf("send through a: %d %s", resp.code, resp.body)
	}
	if sent := b.driver.Conn("s1").Sent(); len(sent) != 1 || !strings.Contains(sent[0], "hello from a") {
		t.Fatalf("b sent %q", sent)
	}
	if a.activity.calls != 0 {
		t.Fatal("a asked Laravel about a session it does not hold")
	}
	if resp := a.call("DELETE", "/sessions/s1", ""); resp.code != 200 || resp.json(t)["status"] != "logged_out" {
		t.Fatalf("logout through a: %d %s", resp.code, resp.body)
	}
	if b.driver.Conn("s1").Logouts() != 1 {
		t.Fatal("b did not log the session out")
	}

	got := b.requests()
	if len(got) != 4 {
		t.Fatalf("b received %d requests, want the 4 a forwarded", len(got))
	}
	for _, h := range got {
		if h.Get(api.HopHeader) != "1" || h.Get("Authorization") != "Bearer "+token || h.Get("X-Forwarded-For") == "" {
			t.Fatalf("a forwarded request lacks the hop mark, the client's token or X-Forwarded-For: %v", h)
		}
	}
	for _, r := range []*replica{a, b} {
		if strings.Contains(r.logs.String(), token) {
			t.Fatalf("the token was logged: %s", r.logs.String())
		}
	}
}

// Two replicas that each believe the other holds a session (the shard is moving) do not bounce
// the request: the second one answers 503 with Retry-After.
func TestForwardingNeverTakesASecondHop(t *testing.T) {
	a, b := newReplica(t, true), newReplica(t, true)
	a.loc.set("s1", api.Location{URL: b.srv.URL})
	b.loc.set("s1", api.Location{URL: a.srv.URL})

	resp := a.call("POST", "/sessions/s1/messages", `{"to":"+4915112345678","text":"x"}`)
	if resp.code != 503 || resp.header.Get("Retry-After") != "1" || resp.errorCode(t) != "session_moving" {
		t.Fatalf("%d %v %s", resp.code, resp.header, resp.body)
	}
	if len(a.requests()) != 1 || len(b.requests()) != 1 {
		t.Fatalf("requests a=%d b=%d, want one each (client->a, a->b)", len(a.requests()), len(b.requests()))
	}
	if a.driver.Opens()+b.driver.Opens() != 0 {
		t.Fatal("a session was opened")
	}
}

// While nobody may act on a session (its shard moves, nobody holds it, the locator cannot say),
// every routed request is answered 503 session_moving with Retry-After: 1 and nothing is started.
func TestRequestsForAMovingSessionAreAnsweredRetryLater(t *testing.T) {
	cases := []struct {
		name string
		loc  api.Location
		err  error
	}{
		{name: "handed over from here", loc: api.Location{Self: true, Moving: true}},
		{name: "taken over elsewhere", loc: api.Location{URL: "http://127.0.0.1:1", Moving: true}},
		{name: "held by nobody", loc: api.Location{}},
		{name: "locator failed", err: errors.New("shard table not loaded")},
	}
	requests := []struct{ method, path, body string }{
		{"POST", "/sessions", `{"session_id":"s1"}`},
		{"POST", "/sessions/s1/messages", `{"to":"+4915112345678","text":"x"}`},
		{"DELETE", "/sessions/s1", ""},
		{"GET", "/sessions/s1", ""},
		{"GET", "/sessions/s1/qr", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := newReplica(t, true)
			a.loc.set("s1", c.loc)
			a.loc.err = c.err
			for _, rq := range requests {
				resp := a.call(rq.method, rq.path, rq.body)
				if resp.code != 503 || resp.header.Get("Retry-After") != "1" || resp.errorCode(t) != "session_moving" {
					t.Fatalf("%s %s: %d %v %s", rq.method, rq.path, resp.code, resp.header, resp.body)
				}
			}
			if a.driver.Opens() != 0 {
				t.Fatal("a session was opened")
			}
		})
	}
}

// A holder that is gone (SIGKILLed, its shards not yet taken over) is answered 503 with
// Retry-After, as nothing reached it; the logs name the holder, never the token.
func TestAnUnreachableHolderIsAnsweredRetryLater(t *testing.T) {
	gone := httptest.NewServer(http.NotFoundHandler())
	goneURL := gone.URL
	gone.Close()
	a := newReplica(t, true)
	a.loc.set("s1", api.Location{URL: goneURL})
	resp := a.call("POST", "/sessions", `{"session_id":"s1"}`)
	if resp.code != 503 || resp.header.Get("Retry-After") != "1" || resp.errorCode(t) != "holder_unreachable" {
		t.Fatalf("%d %v %s", resp.code, resp.header, resp.body)
	}
	logs := a.logs.String()
	if !strings.Contains(logs, strings.TrimPrefix(goneURL, "http://")) || strings.Contains(logs, token) {
		t.Fatalf("logs must name the holder and not the token: %s", logs)
	}
}

// A holder that accepts the request and dies before answering leaves its outcome unknown: 502
// holder_failed, without Retry-After (a send may have happened).
func TestAHolderThatFailsMidRequestIsABadGateway(t *testing.T) {
	dying := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		panic(http.ErrAbortHandler) // the connection is closed without an answer
	}))
	defer dying.Close()
	dying.Config.ErrorLog = slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)
	a := newReplica(t, true)
	a.loc.set("s1", api.Location{URL: dying.URL})
	resp := a.call("POST", "/sessions/s1/messages", `{"to":"+4915112345678","text":"x"}`)
	if resp.code != 502 || resp.header.Get("Retry-After") != "" || resp.errorCode(t) != "holder_failed" {
		t.Fatalf("%d %v %s", resp.code, resp.header, resp.body)
	}
}

// Authentication comes first: a wrong token is refused where it arrives, without asking who holds
// the session or forwarding anything.
func TestAWrongTokenIsRefusedBeforeRouting(t *testing.T) {
	a, b := newReplica(t, true), newReplica(t, true)
	a.loc.set("s1", api.Location{URL: b.srv.URL})
	for _, path := range []string{"/sessions/s1", "/sessions/s1/qr"} {
		if resp := a.call("GET", path, "", "wrong-token"); resp.code != 401 {
			t.Fatalf("%s: %d", path, resp.code)
		}
	}
	if resp := a.call("DELETE", "/sessions/s1", "", "wrong-token"); resp.code != 401 {
		t.Fatalf("delete: %d", resp.code)
	}
	if a.loc.calls != 0 || len(b.requests()) != 0 {
		t.Fatalf("locator asked %d times, b received %d requests", a.loc.calls, len(b.requests()))
	}
}

// Without ForwardReads (reads come from the shared cache), status and QR reads are served where
// they arrive; only changes are forwarded.
func TestReadsAreServedLocallyUnlessForwardReads(t *testing.T) {
	a, b := newReplica(t, false), newReplica(t, false)
	a.loc.set("s1", api.Location{URL: b.srv.URL})
	b.loc.set("s1", api.Location{Self: true})
	if resp := a.call("POST", "/sessions", `{"session_id":"s1"}`); resp.code != 200 {
		t.Fatalf("start: %d %s", resp.code, resp.body)
	}
	// a's reader does not know s1 (a stands in for a cache that has not seen it yet).
	if resp := a.call("GET", "/sessions/s1", ""); resp.code != 404 {
		t.Fatalf("a local read: %d %s", resp.code, resp.body)
	}
	if len(b.requests()) != 1 {
		t.Fatalf("b received %d requests, want only the forwarded start", len(b.requests()))
	}
}

// The start body is forwarded byte for byte, even one with extra whitespace and fields the
// holder ignores.
func TestTheStartBodyIsForwardedAsSent(t *testing.T) {
	var got []byte
	holder := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"session_id": "s1", "status": "pending"})
	}))
	defer holder.Close()
	a := newReplica(t, true)
	a.loc.set("s1", api.Location{URL: holder.URL})
	body := "{ \"session_id\" : \"s1\",\n  \"note\": \"" + strings.Repeat("x", 10000) + "\" }"
	if resp := a.call("POST", "/sessions", body); resp.code != 200 {
		t.Fatalf("%d %s", resp.code, resp.body)
	}
	if string(got) != body {
		t.Fatalf("the holder got %d bytes, want the %d sent", len(got), len(body))
	}
}

// notOwner is a session service on a replica that lost the session's shard after routing chose
// it: every change is refused with session.ErrNotOwner.
type notOwner struct{}

func (notOwner) Start(context.Context, string) (session.Info, error) {
	return session.Info{}, fmt.Errorf("start: %w", session.ErrNotOwner)
}

func (notOwner) Logout(context.Context, string) (session.Info, error) {
	return session.Info{}, fmt.Errorf("logout: %w", session.ErrNotOwner)
}

func (notOwner) SendText(context.Context, string, session.OutgoingText) (string, error) {
	return "", fmt.Errorf("send: %w", session.ErrNotOwner)
}

// A shard that moves between routing and acting (the replica held it when asked, not when it
// acted) is answered like a moving shard: 503 session_moving with Retry-After, not a 502.
func TestASessionLostAfterRoutingIsAnsweredRetryLater(t *testing.T) {
	r := newReplica(t, true)
	h, err := api.New(api.Config{Token: token, Sessions: notOwner{}, Reader: r.m, Activity: r.activity,
		Logger: slog.New(slog.DiscardHandler), Locator: r.loc})
	if err != nil {
		t.Fatal(err)
	}
	r.loc.set("s1", api.Location{Self: true})
	for _, rq := range []struct{ method, path, body string }{
		{"POST", "/sessions", `{"session_id":"s1"}`},
		{"DELETE", "/sessions/s1", ""},
	} {
		req := httptest.NewRequest(rq.method, rq.path, strings.NewReader(rq.body))
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		resp := response{code: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
		if resp.code != 503 || resp.header.Get("Retry-After") != "1" || resp.errorCode(t) != "session_moving" {
			t.Fatalf("%s %s: %d %v %s", rq.method, rq.path, resp.code, resp.header, resp.body)
		}
	}
}

// ObserveRoute is told each routing decision (what a metric of forwarded requests counts): here,
// forward, retry; requests that act on no one session (list, health) are not routed.
func TestRoutingDecisionsAreObserved(t *testing.T) {
	b := newReplica(t, true)
	b.loc.set("mine", api.Location{Self: true})
	a := newReplica(t, true)
	var mu sync.Mutex
	var seen []string
	h, err := api.New(api.Config{Token: token, Sessions: a.m, Reader: a.m, Activity: a.activity,
		Logger: slog.New(slog.DiscardHandler), Locator: a.loc, ForwardReads: true,
		ObserveRoute: func(d string) { mu.Lock(); seen = append(seen, d); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	a.loc.set("mine", api.Location{Self: true})
	a.loc.set("theirs", api.Location{URL: b.srv.URL})
	a.loc.set("moving", api.Location{Moving: true})
	for _, path := range []string{"/sessions/mine", "/sessions/theirs", "/sessions/moving", "/sessions", "/healthz"} {
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	if want := []string{"here", "forward", "retry"}; !slices.Equal(seen, want) {
		t.Fatalf("observed %v, want %v", seen, want)
	}
}
