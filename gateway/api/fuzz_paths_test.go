package api_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"wagate/gateway/api"
	"wagate/gateway/session"
	"wagate/gateway/session/sessiontest"
)

// No method, path, query or header makes the API answer 5xx or panic; without the token only the
// public endpoints answer anything but 401, 404, 405 or 429; every error body is the JSON error.
func FuzzPathsAndHeaders(f *testing.F) {
	seeds := []struct {
		method, path, auth, accept string
	}{
		{"GET", "/sessions/s1", "Bearer " + token, ""},
		{"GET", "/sessions?limit=5&after=x", "Bearer " + token, ""},
		{"GET", "/sessions?limit=-1", "Bearer " + token, ""},
		{"GET", "/sessions/s1/qr?format=png", "Bearer " + token, "image/png"},
		{"DELETE", "/sessions/%2e%2e", "Bearer " + token, ""},
		{"GET", "/sessions/" + strings.Repeat("a", 300), "Bearer " + token, ""},
		{"PUT", "/sessions/s1/messages", "Bearer " + token, ""},
		{"GET", "/sessions/s1", "Basic dXNlcjpwYXNz", ""},
		{"GET", "/metrics", "", ""},
		{"GET", "/readyz", "", ""},
		{"GET", "//sessions//s1/../qr", "bearer " + token, "*/*"},
		{"GET", "/sessions/\u00e9\u0000", "Bearer " + token, ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.auth, s.accept)
	}
	m, err := session.New(context.Background(), session.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		sessiontest.NewDriver(), sessiontest.NewStore(), &sessiontest.Sink{})
	if err != nil {
		f.Fatal(err)
	}
	defer m.Close(context.Background())
	h, err := api.New(api.Config{Token: token, Sessions: m, Reader: m, Activity: &activity{active: map[string]bool{}},
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Metrics:   http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "wagate_up 1\n") }),
		RateLimit: api.RateLimit{Disabled: true}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, path, auth, accept string) {
		req, err := http.NewRequest(method, "http://gateway.test/", nil)
		if err != nil {
			return // not a method net/http would ever deliver
		}
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		// The server hands handlers the request target as parsed from the wire; a target net/http
		// itself refuses never reaches the API.
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if u, perr := r.URL.Parse(path); perr != nil || strings.ContainsAny(path, " \r\n\t") {
			return
		} else {
			req.URL.Path, req.URL.RawPath, req.URL.RawQuery = u.Path, u.RawPath, u.RawQuery
		}
		req.RequestURI = path
		req.RemoteAddr = "192.0.2.1:1234"
		if auth != "" && !strings.ContainsAny(auth, "\r\n") {
			req.Header.Set("Authorization", auth)
		}
		if accept != "" && !strings.ContainsAny(accept, "\r\n") {
			req.Header.Set("Accept", accept)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 && !(req.URL.Path == "/readyz" && rec.Code == http.StatusServiceUnavailable) {
			t.Fatalf("%s %q: %d %s", method, path, rec.Code, rec.Body)
		}
		authed := strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(auth, "Bearer "), "bearer ")) == token &&
			(strings.HasPrefix(auth, "Bearer ") || strings.HasPrefix(auth, "bearer "))
		public := req.URL.Path == "/healthz" || req.URL.Path == "/readyz" || req.URL.Path == "/metrics"
		if rec.Code >= 300 && rec.Code < 400 {
			// ServeMux redirects unclean paths to their clean form on the same host (then auth
			// applies); it must never point elsewhere (an open redirect).
			if loc := rec.Header().Get("Location"); !strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") {
				t.Fatalf("%s %q redirects to %q", method, path, loc)
			}
		} else if !authed && !public && rec.Code < 400 {
			t.Fatalf("unauthenticated %s %q answered %d", method, path, rec.Code)
		}
		if rec.Code >= 400 && rec.Code != http.StatusServiceUnavailable && method != http.MethodHead {
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Fatalf("%s %q: error %d with content type %q", method, path, rec.Code, ct)
			}
		}
	})
}
