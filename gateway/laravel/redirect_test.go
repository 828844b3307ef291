package laravel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Defect 9: the client followed redirects, sending the bearer token, the signed body and the
// signature to whatever host a 307 named, and a 301/302 turned the POST into a GET. Now no
// redirect is followed: a 3xx is a StatusError naming the status and the (redacted) Location,
// matching ErrRedirect, and the other host never sees a request.
func TestRedirectsAreNeverFollowed(t *testing.T) {
	for _, code := range []int{301, 302, 303, 307, 308} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			var elsewhere atomic.Int64
			other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				elsewhere.Add(1)
				w.WriteHeader(http.StatusOK)
				_, _ = w.Write([]byte(`{"success":true,"updated":1,"failed":0,"stale":0,"errors":[]}`))
			}))
			t.Cleanup(other.Close)
			location := strings.Replace(other.URL, "http://", "http://user:hunter2@", 1) + "/api/qr/batch?token=leak"
			c, obs := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Location", location)
				w.WriteHeader(code)
			}, func(cfg *ClientConfig) { cfg.Secret = []byte("signing-secret") })

			_, err := c.PostQRBatch(context.Background(), "key-1", QRBatch{QRs: []QRItem{{SessionID: "s1", QR: "q", Version: 1, EventID: "e1"}}})
			if n := elsewhere.Load(); n != 0 {
				t.Fatalf("the redirect was followed: the other host got %d requests (token, body and signature with them)", n)
			}
			var se *StatusError
			if !errors.As(err, &se) || se.Status != code || !errors.Is(err, ErrRedirect) {
				t.Fatalf("err %v; want a StatusError %d matching ErrRedirect", err, code)
			}
			msg := err.Error()
			if !strings.Contains(msg, fmt.Sprint(code)) || !strings.Contains(msg, strings.TrimPrefix(other.URL, "http://")) {
				t.Fatalf("error %q does not name the status and the Location", msg)
			}
			if strings.Contains(msg, "hunter2") || strings.Contains(msg, "leak") || strings.Contains(se.Location, "hunter2") {
				t.Fatalf("error %q prints the Location's credentials", msg)
			}
			if len(*obs) != 1 || (*obs)[0].status != code {
				t.Fatalf("observed %+v; want one request answered %d", *obs, code)
			}
		})
	}
}

// A caller's own http.Client (tests, custom transports) does not follow redirects either, and is
// not changed.
func TestAGivenHTTPClientDoesNotFollowRedirectsEither(t *testing.T) {
	var followed atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/moved" {
			followed.Add(1)
			return
		}
		http.Redirect(w, r, "/moved", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(srv.Close)
	own := &http.Client{}
	c, err := NewClient(ClientConfig{BaseURL: srv.URL, HTTPClient: own})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.PostQR(context.Background(), QRUpdate{SessionID: "s1", QR: "q"}); !errors.Is(err, ErrRedirect) || followed.Load() != 0 {
		t.Fatalf("err %v, followed %d; want ErrRedirect and no request to the Location", err, followed.Load())
	}
	if own.CheckRedirect != nil {
		t.Fatal("NewClient changed the caller's http.Client")
	}
}

// Defect 10 (client half): a Laravel URL with credentials in its user info or query must not
// appear in the client's errors.
func TestNetworkErrorsDoNotPrintTheURLsCredentials(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens: connection refused
	c, err := NewClient(ClientConfig{BaseURL: "http://admin:hunter2@" + addr + "/?api_token=leak", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.PostStatusBatch(context.Background(), "k", StatusBatch{Statuses: []StatusItem{{SessionID: "s1", EstadoQR: StatusConnected, Version: 1, EventID: "e"}}})
	if err == nil {
		t.Fatal("no error from a closed port")
	}
	for _, secret := range []string{"hunter2", "admin", "leak"} {
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("error %q prints %q", err, secret)
		}
	}
	if _, err := NewClient(ClientConfig{BaseURL: "ftp://admin:hunter2@host/"}); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("NewClient error %v prints the password", err)
	}
}

func TestRedactURL(t *testing.T) {
	cases := []struct{ in, want string }{
		{"https://app.example.com", "https://app.example.com"},
		{"https://app.example.com/base/", "https://app.example.com/base/"},
		{"https://user:pass@app.example.com/x", "https://redacted@app.example.com/x"},
		{"https://user@app.example.com", "https://redacted@app.example.com"},
		{"https://app.example.com/x?token=abc&b=1", "https://app.example.com/x?b=redacted&token=redacted"},
		{"https://app.example.com/x#frag", "https://app.example.com/x"},
		{"http://127.0.0.1:8000", "http://127.0.0.1:8000"},
		// Does not parse (a bad escape): cut before the query, user info removed all the same.
		{"https://us%zz:pa%zz@host/p?token=abc", "https://redacted@host/p"},
		{"", ""},
	}
	for _, c := range cases {
		if got := RedactURL(c.in); got != c.want {
			t.Errorf("RedactURL(%q) = %q; want %q", c.in, got, c.want)
		}
	}
}
