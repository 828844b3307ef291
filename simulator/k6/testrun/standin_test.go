package testrun

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// standIn is an httpbin-like server on loopback (HTTP and HTTPS) for the conformance scripts.
type standIn struct {
	http, https *httptest.Server
	requests    atomic.Int64
}

func newStandIn(t *testing.T) *standIn {
	t.Helper()
	s := &standIn{}
	mux := http.NewServeMux()
	mux.HandleFunc("/status/{code}", func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(r.PathValue("code"))
		if err != nil {
			http.Error(w, "bad code", http.StatusBadRequest)
			return
		}
		w.WriteHeader(code)
	})
	echo := func(w http.ResponseWriter, r *http.Request) {
		rawBytes, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(rawBytes))
		_ = r.ParseForm()
		var body any
		raw := string(rawBytes)
		_ = json.Unmarshal(rawBytes, &body)
		headers := map[string]string{}
		for k, v := range r.Header {
			headers[k] = strings.Join(v, ", ")
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"method": r.Method, "url": r.URL.String(), "headers": headers, "form": r.PostForm, "json": body, "data": raw,
			"args": r.URL.Query(),
		})
	}
	mux.HandleFunc("/anything", echo)
	mux.HandleFunc("/anything/{rest...}", echo)
	mux.HandleFunc("/redirect/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		if n <= 1 {
			http.Redirect(w, r, "/anything", http.StatusFound)
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/redirect/%d", n-1), http.StatusFound)
	})
	mux.HandleFunc("/cookies/set", func(w http.ResponseWriter, r *http.Request) {
		for k, v := range r.URL.Query() {
			http.SetCookie(w, &http.Cookie{Name: k, Value: v[0], Path: "/"})
		}
		w.WriteHeader(http.StatusOK)
	})
	mux.HandleFunc("/cookies", func(w http.ResponseWriter, r *http.Request) {
		out := map[string]string{}
		for _, c := range r.Cookies() {
			out[c.Name] = c.Value
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"cookies": out})
	})
	mux.HandleFunc("/basic-auth/{user}/{pass}", func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != r.PathValue("user") || p != r.PathValue("pass") {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"authenticated": true, "user": u})
	})
	mux.HandleFunc("/delay/{ms}", func(w http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.PathValue("ms"))
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusOK)
	})
	mux.HandleFunc("/json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"slideshow":{"title":"Sample","slides":[{"title":"one"},{"title":"two"}]}}`)
	})
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		mux.ServeHTTP(w, r)
	})
	s.http = httptest.NewServer(handler)
	s.https = httptest.NewUnstartedServer(handler)
	s.https.EnableHTTP2 = true
	s.https.StartTLS()
	t.Cleanup(func() { s.http.Close(); s.https.Close() })
	return s
}
