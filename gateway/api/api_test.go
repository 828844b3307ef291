package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"wagate/gateway/api"
	"wagate/gateway/session"
	"wagate/gateway/session/sessiontest"
)

const token = "test-token-0123456789"

// activity is a fake ActivityChecker: sessions listed in active are active; calls are counted.
type activity struct {
	mu     sync.Mutex
	active map[string]bool
	err    error
	calls  int
}

func (a *activity) IsSessionActive(ctx context.Context, id string) (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls++
	return a.active[id], a.err
}

type rig struct {
	t        *testing.T
	h        http.Handler
	m        *session.Manager
	driver   *sessiontest.Driver
	activity *activity
	observed []string
	logs     *bytes.Buffer
}

func newRig(t *testing.T, extra ...api.Route) *rig {
	t.Helper()
	r := &rig{t: t, driver: sessiontest.NewDriver(), activity: &activity{active: map[string]bool{}}, logs: &bytes.Buffer{}}
	log := slog.New(slog.NewTextHandler(r.logs, nil))
	m, err := session.New(context.Background(), session.Config{Logger: log}, r.driver, sessiontest.NewStore(), &sessiontest.Sink{})
	if err != nil {
		t.Fatal(err)
	}
	r.m = m
	var mu sync.Mutex
	h, err := api.New(api.Config{
		Token: token, Sessions: m, Reader: m, Activity: r.activity, Logger: log,
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "wagate_sessions 1\n") }),
		ObserveRequest: func(route, method string, code int, _ time.Duration) {
			mu.Lock()
			r.observed = append(r.observed, route+" "+method+" "+http.StatusText(code))
			mu.Unlock()
		},
		Ready:    []api.Check{{Name: "store", Check: func(context.Context) error { return nil }}},
		Warnings: []string{"INSECURE TEST SETTING"},
		Routes:   extra,
	})
	if err != nil {
		t.Fatal(err)
	}
	r.h = h
	return r
}

func (r *rig) close() { _ = r.m.Close(context.Background()) }

type response struct {
	code   int
	header http.Header
	body   []byte
}

func (resp response) json(t *testing.T) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(resp.body, &v); err != nil {
		t.Fatalf("body %q is not JSON: %v", resp.body, err)
	}
	return v
}

func (resp response) errorCode(t *testing.T) string {
	t.Helper()
	e, ok := resp.json(t)["error"].(map[string]any)
	if !ok || e["message"] == "" {
		t.Fatalf("body %s is not an error body", resp.body)
	}
	return e["code"].(string)
}

func (r *rig) do(method, path, body string, headers ...string) response {
	r.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	rec := httptest.NewRecorder()
	r.h.ServeHTTP(rec, req)
	synctest.Wait()
	return response{code: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

func (r *rig) pair(id string) {
	r.t.Helper()
	if resp := r.do("POST", "/sessions", `{"session_id":"`+id+`"}`); resp.code != 200 {
		r.t.Fatalf("start %s: %d %s", id, resp.code, resp.body)
	}
	r.driver.Conn(id).Scan()
	synctest.Wait()
}

func TestStartSessionThenReadItsQRAsJSONAndPNG(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.close()
		resp := r.do("POST", "/sessions", `{"session_id":"shop_1"}`)
		if resp.code != 200 {
			t.Fatalf("%d %s", resp.code, resp.body)
		}
		if v := resp.json(t); v["session_id"] != "shop_1" || v["status"] != "pending" {
			t.Fatalf("start answered %s", resp.body)
		}
		// Idempotent.
		if resp := r.do("POST", "/sessions", `{"session_id":"shop_1"}`); resp.code != 200 || r.driver.Opens() != 1 {
			t.Fatalf("second start: %d, opens %d", resp.code, r.driver.Opens())
		}

		resp = r.do("GET", "/sessions/shop_1/qr", "")
		v := resp.json(t)
		if resp.code != 200 || v["qr"] != "code-1" || v["expires_at"] != time.Now().Add(60*time.Second).UTC().Format(time.RFC3339Nano) {
			t.Fatalf("qr json: %d %s", resp.code, resp.body)
		}
		if resp.header.Get("Cache-Control") != "no-store" {
			t.Fatal("a QR code must not be cached")
		}
		for _, variant := range []response{r.do("GET", "/sessions/shop_1/qr?format=png", ""), r.do("GET", "/sessions/shop_1/qr", "", "Accept", "text/html, image/png;q=0.9")} {
			if variant.code != 200 || variant.header.Get("Content-Type") != "image/png" {
				t.Fatalf("png: %d %s", variant.code, variant.header)
			}
			img, err := png.Decode(bytes.NewReader(variant.body))
			if err != nil || img.Bounds().Dx() != api.QRPNGSize {
				t.Fatalf("png decode: %v %v", err, img)
			}
		}
	})
}

func TestGetSessionReportsStatusAndActive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.close()
		r.pair("s1")
		r.activity.active["s1"] = true
		v := r.do("GET", "/sessions/s1", "").json(t)
		if v["status"] != "connected" || v["active"] != true || v["connected"] != true || v["paired"] != true || v["has_qr"] != false {
			t.Fatalf("%v", v)
		}
		if r.activity.calls != 1 {
			t.Fatalf("%d activity checks", r.activity.calls)
		}
		r.activity.err = errors.New("laravel down")
		resp := r.do("GET", "/sessions/s1", "")
		if v := resp.json(t); resp.code != 200 || v["active"] != nil || v["active_error"] == nil || v["status"] != "connected" {
			t.Fatalf("with Laravel down: %d %s", resp.code, resp.body)
		}
		if resp := r.do("GET", "/sessions/s1/qr", ""); resp.code != 404 || resp.errorCode(t) != "qr_not_available" {
			t.Fatalf("qr of a connected session: %d %s", resp.code, resp.body)
		}
	})
}

func TestListSessionsPaginates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.close()
		for _, id := range []string{"c", "a", "b"} {
			r.do("POST", "/sessions", `{"session_id":"`+id+`"}`)
		}
		var got []string
		path := "/sessions?limit=2"
		for range 5 {
			v := r.do("GET", path, "").json(t)
			for _, s := range v["sessions"].([]any) {
				got = append(got, s.(map[string]any)["session_id"].(string))
			}
			next := v["next_cursor"].(string)
			if next == "" {
				break
			}
			path = "/sessions?limit=2&after=" + next
		}
		if strings.Join(got, ",") != "a,b,c" {
			t.Fatalf("pages gave %v", got)
		}
	})
}

func TestSendMessageChecksIsSessionActive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.close()
		r.pair("s1")
		body := `{"to":"+15550001111","text":"hola"}`
		if resp := r.do("POST", "/sessions/s1/messages", body); resp.code != 409 || resp.errorCode(t) != "session_not_active" {
			t.Fatalf("inactive: %d %s", resp.code, resp.body)
		}
		r.activity.active["s1"] = true
		resp := r.do("POST", "/sessions/s1/messages", body)
		v := resp.json(t)
		if resp.code != 200 || v["message_id"] == "" || v["to"] != "15550001111" {
			t.Fatalf("send: %d %s", resp.code, resp.body)
		}
		if sent := r.driver.Conn("s1").Sent(); len(sent) != 1 || sent[0] != "15550001111:hola" {
			t.Fatalf("sent %q", sent)
		}
		// Laravel says active but the WhatsApp connection is down (and WhatsApp unreachable, so the
		// session's reconnect fails too): 409 too, not 500.
		r.driver.ConnectErr = errors.New("whatsapp unreachable")
		r.driver.Conn("s1").DropAndStayDown()
		synctest.Wait()
		if resp := r.do("POST", "/sessions/s1/messages", body); resp.code != 409 || resp.errorCode(t) != "session_not_connected" {
			t.Fatalf("disconnected: %d %s", resp.code, resp.body)
		}
		r.activity.err = errors.New("laravel down")
		if resp := r.do("POST", "/sessions/s1/messages", body); resp.code != 502 {
			t.Fatalf("laravel down: %d %s", resp.code, resp.body)
		}
	})
}

func TestLogoutReportsLoggedOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.close()
		r.pair("s1")
		resp := r.do("DELETE", "/sessions/s1", "")
		if v := resp.json(t); resp.code != 200 || v["status"] != "logged_out" || v["paired"] != false {
			t.Fatalf("%d %s", resp.code, resp.body)
		}
	})
}

func TestBadInputGetsA4xxWithAnErrorBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.close()
		r.pair("s1")
		r.activity.active["s1"] = true
		big := `{"session_id":"` + strings.Repeat("a", api.MaxBodyBytes) + `"}`
		cases := []struct {
			name, method, path, body string
			headers                  []string
			code                     int
			errCode                  string
		}{
			{"no token", "GET", "/sessions", "", []string{"Authorization", ""}, 401, "unauthorized"},
			{"wrong token", "GET", "/sessions", "", []string{"Authorization", "Bearer nope"}, 401, "unauthorized"},
			{"token as basic", "GET", "/sessions", "", []string{"Authorization", "Basic " + token}, 401, "unauthorized"},
			{"session id with a space", "POST", "/sessions", `{"session_id":"a b"}`, nil, 400, "invalid_session_id"},
			{"session id too long", "POST", "/sessions", `{"session_id":"` + strings.Repeat("x", 65) + `"}`, nil, 400, "invalid_session_id"},
			{"empty session id", "POST", "/sessions", `{"session_id":""}`, nil, 400, "invalid_session_id"},
			{"session id in path", "GET", "/sessions/a.b", "", nil, 400, "invalid_session_id"},
			{"session id in path too long", "GET", "/sessions/" + strings.Repeat("x", 65) + "/qr", "", nil, 400, "invalid_session_id"},
			{"unknown session", "GET", "/sessions/nobody", "", nil, 404, "session_not_found"},
			{"unknown session qr", "GET", "/sessions/nobody/qr", "", nil, 404, "session_not_found"},
			{"unknown session logout", "DELETE", "/sessions/nobody", "", nil, 404, "session_not_found"},
			{"unknown session message", "POST", "/sessions/nobody/messages", `{"to":"15550001111","text":"x"}`, nil, 404, "session_not_found"},
			{"malformed json", "POST", "/sessions", `{"session_id":`, nil, 400, "invalid_json"},
			{"empty body", "POST", "/sessions", ``, nil, 400, "invalid_json"},
			{"wrong type", "POST", "/sessions", `{"session_id":7}`, nil, 400, "invalid_json"},
			{"two values", "POST", "/sessions", `{"session_id":"a"}{}`, nil, 400, "invalid_json"},
			{"body over 64 KiB", "POST", "/sessions", big, nil, 413, "body_too_large"},
			{"phone with letters", "POST", "/sessions/s1/messages", `{"to":"555-CALL-NOW","text":"x"}`, nil, 422, "invalid_phone"},
			{"phone too short", "POST", "/sessions/s1/messages", `{"to":"12345","text":"x"}`, nil, 422, "invalid_phone"},
			{"phone starting with 0", "POST", "/sessions/s1/messages", `{"to":"0015550001111","text":"x"}`, nil, 422, "invalid_phone"},
			{"empty text", "POST", "/sessions/s1/messages", `{"to":"15550001111","text":"  "}`, nil, 422, "invalid_text"},
			{"text too long", "POST", "/sessions/s1/messages", `{"to":"15550001111","text":"` + strings.Repeat("é", api.MaxTextLen+1) + `"}`, nil, 422, "invalid_text"},
			{"malformed message json", "POST", "/sessions/s1/messages", `{"to":`, nil, 400, "invalid_json"},
			{"quote not a message id", "POST", "/sessions/s1/messages", `{"to":"15550001111","text":"x","quote":"a b"}`, nil, 422, "invalid_quote"},
			{"idempotency key with a space", "POST", "/sessions/s1/messages", `{"to":"15550001111","text":"x"}`, []string{"Idempotency-Key", "a b"}, 400, "invalid_idempotency_key"},
			{"idempotency key too long", "POST", "/sessions/s1/messages", `{"to":"15550001111","text":"x"}`, []string{"Idempotency-Key", strings.Repeat("k", 256)}, 400, "invalid_idempotency_key"},
			{"wrong method", "PUT", "/sessions/s1", "", nil, 405, "method_not_allowed"},
			{"unknown path", "GET", "/nope", "", nil, 404, "not_found"},
			{"bad limit", "GET", "/sessions?limit=0", "", nil, 400, "invalid_limit"},
			{"huge limit", "GET", "/sessions?limit=100000", "", nil, 400, "invalid_limit"},
			{"bad cursor", "GET", "/sessions?after=%2F%2F", "", nil, 400, "invalid_cursor"},
		}
		for _, tc := range cases {
			resp := r.do(tc.method, tc.path, tc.body, tc.headers...)
			if resp.code != tc.code {
				t.Errorf("%s: status %d, want %d (%s)", tc.name, resp.code, tc.code, resp.body)
				continue
			}
			if got := resp.errorCode(t); got != tc.errCode {
				t.Errorf("%s: error code %q, want %q", tc.name, got, tc.errCode)
			}
			if ct := resp.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("%s: content type %q", tc.name, ct)
			}
		}
		if got := r.do("GET", "/sessions", "", "Authorization", "").header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
			t.Errorf("401 without WWW-Authenticate: %q", got)
		}
		if len(r.driver.Conn("s1").Sent()) != 0 {
			t.Error("a bad request sent a message")
		}
	})
}

func TestAPanicIsRecoveredLoggedAndAnswered500(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, api.Route{Pattern: "GET /boom", Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
			panic("kaboom")
		})})
		defer r.close()
		resp := r.do("GET", "/boom", "")
		if resp.code != 500 || resp.errorCode(t) != "internal" {
			t.Fatalf("%d %s", resp.code, resp.body)
		}
		if !strings.Contains(r.logs.String(), "kaboom") {
			t.Fatal("the panic was not logged")
		}
		if strings.Contains(string(resp.body), "kaboom") {
			t.Fatal("the panic value leaked to the client")
		}
		// The server keeps serving.
		if resp := r.do("GET", "/healthz", ""); resp.code != 200 {
			t.Fatal("not serving after a panic")
		}
	})
}

func TestOperationalEndpointsNeedNoToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.close()
		if resp := r.do("GET", "/healthz", "", "Authorization", ""); resp.code != 200 {
			t.Fatalf("healthz %d", resp.code)
		}
		resp := r.do("GET", "/readyz", "", "Authorization", "")
		v := resp.json(t)
		if resp.code != 200 || v["status"] != "ready" || v["checks"].(map[string]any)["store"] != "ok" ||
			len(v["warnings"].([]any)) != 1 {
			t.Fatalf("readyz %d %s", resp.code, resp.body)
		}
		if resp := r.do("GET", "/metrics", "", "Authorization", ""); resp.code != 200 || !strings.Contains(string(resp.body), "wagate_sessions") {
			t.Fatalf("metrics %d %s", resp.code, resp.body)
		}
	})
}

func TestReadyzFailsWhenACheckFails(t *testing.T) {
	r := &rig{t: t}
	h, err := api.New(api.Config{Token: token, Sessions: nilManager{}, Reader: nilManager{}, Activity: &activity{},
		Ready: []api.Check{{Name: "redis", Check: func(context.Context) error { return errors.New("connection refused") }}}})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), "connection refused") {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	_ = r
}

func TestRequestsAreObservedByRoute(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.close()
		r.do("POST", "/sessions", `{"session_id":"a"}`)
		r.do("GET", "/sessions/a", "")
		r.do("GET", "/nope", "")
		want := []string{"/sessions POST OK", "/sessions/{id} GET OK", "other GET Not Found"}
		if strings.Join(r.observed, "|") != strings.Join(want, "|") {
			t.Fatalf("observed %q", r.observed)
		}
	})
}

func TestNewRequiresAToken(t *testing.T) {
	if _, err := api.New(api.Config{Sessions: nilManager{}, Reader: nilManager{}, Activity: &activity{}}); err == nil {
		t.Fatal("an API without a token was accepted")
	}
}

func TestServerHasTimeouts(t *testing.T) {
	s := api.NewServer(":0", http.NotFoundHandler(), nil)
	if s.ReadHeaderTimeout == 0 || s.ReadTimeout == 0 || s.WriteTimeout == 0 || s.IdleTimeout == 0 {
		t.Fatalf("%+v", s)
	}
}

type nilManager struct{}

func (nilManager) Start(context.Context, string) (session.Info, error)  { return session.Info{}, nil }
func (nilManager) Logout(context.Context, string) (session.Info, error) { return session.Info{}, nil }
func (nilManager) Media(context.Context, string, string) (session.Media, error) {
	return session.Media{}, session.ErrMediaNotFound
}
func (nilManager) SendText(context.Context, string, session.OutgoingText) (string, error) {
	return "", nil
}
func (nilManager) Get(context.Context, string) (session.Info, error) { return session.Info{}, nil }
func (nilManager) List(context.Context, string, int) ([]session.Info, string, error) {
	return nil, "", nil
}

// No request body, however malformed, makes the API answer 5xx.
func FuzzRequestBodiesNeverGive5xx(f *testing.F) {
	for _, s := range []string{`{"session_id":"a"}`, `{"to":"15550001111","text":"x"}`, `{`, `null`, `[]`, `{"session_id":null}`, "\x00"} {
		f.Add(s, uint8(0))
	}
	m, err := session.New(context.Background(), session.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		sessiontest.NewDriver(), sessiontest.NewStore(), &sessiontest.Sink{})
	if err != nil {
		f.Fatal(err)
	}
	defer m.Close(context.Background())
	h, err := api.New(api.Config{Token: token, Sessions: m, Reader: m, Activity: &activity{active: map[string]bool{}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), RateLimit: api.RateLimit{Disabled: true}})
	if err != nil {
		f.Fatal(err)
	}
	paths := []string{"/sessions", "/sessions/s1/messages"}
	f.Fuzz(func(t *testing.T, body string, which uint8) {
		req := httptest.NewRequest("POST", paths[int(which)%len(paths)], strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("body %q: %d %s", body, rec.Code, rec.Body)
		}
	})
}
