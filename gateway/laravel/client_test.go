package laravel

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

type observed struct {
	endpoint string
	status   int
}

// newTestClient starts h on loopback and returns a client pointed at it plus the observations.
func newTestClient(t *testing.T, h http.HandlerFunc, mutate func(*ClientConfig)) (*Client, *[]observed) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	var mu sync.Mutex
	obs := &[]observed{}
	cfg := ClientConfig{
		BaseURL: srv.URL + "/",
		Token:   "tok",
		Timeout: 2 * time.Second,
		Observer: func(endpoint string, status int, _ time.Duration) {
			mu.Lock()
			*obs = append(*obs, observed{endpoint, status})
			mu.Unlock()
		},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, obs
}

func TestNewClientRejectsBadBaseURL(t *testing.T) {
	for _, u := range []string{"", "localhost:8000", "ftp://x", "http://"} {
		if _, err := NewClient(ClientConfig{BaseURL: u}); err == nil {
			t.Errorf("NewClient(%q) accepted a bad base URL", u)
		}
	}
}

func TestPostQRSendsBearerJSONAndSignature(t *testing.T) {
	secret := []byte("s3cret")
	now := time.Unix(1_700_000_000, 0)
	var got QRUpdate
	c, obs := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch {
		case r.Method != http.MethodPost || r.URL.Path != PathQR:
			http.Error(w, "wrong route "+r.Method+" "+r.URL.Path, http.StatusBadRequest)
		case r.Header.Get("Authorization") != "Bearer tok":
			http.Error(w, "no bearer", http.StatusUnauthorized)
		case r.Header.Get("Content-Type") != "application/json":
			http.Error(w, "no json", http.StatusUnsupportedMediaType)
		case VerifySignature(secret, r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderSignature), body, now, time.Minute) != nil:
			http.Error(w, "bad signature", http.StatusUnauthorized)
		default:
			_ = json.Unmarshal(body, &got)
			_, _ = w.Write([]byte(`{"success":true}`))
		}
	}, func(cfg *ClientConfig) {
		cfg.Secret = secret
		cfg.Now = func() time.Time { return now }
	})
	if err := c.PostQR(context.Background(), QRUpdate{SessionID: "s1", QR: "2@abc"}); err != nil {
		t.Fatal(err)
	}
	if got != (QRUpdate{SessionID: "s1", QR: "2@abc"}) {
		t.Fatalf("server got %+v", got)
	}
	if len(*obs) != 1 || (*obs)[0] != (observed{EndpointQR, 200}) {
		t.Fatalf("observer saw %+v", *obs)
	}
}

func TestUnsignedWhenNoSecret(t *testing.T) {
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(HeaderSignature) != "" || r.Header.Get(HeaderTimestamp) != "" {
			http.Error(w, "unexpected signature", 400)
			return
		}
		w.WriteHeader(204)
	}, nil)
	if err := c.PostStatus(context.Background(), StatusUpdate{SessionID: "s1", EstadoQR: StatusConnected}); err != nil {
		t.Fatal(err)
	}
}

func TestLegacyPostToleratesAnyTwoHundredBody(t *testing.T) {
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("OK, not json"))
	}, nil)
	if err := c.PostStatus(context.Background(), StatusUpdate{SessionID: "s1", EstadoQR: StatusPending}); err != nil {
		t.Fatalf("legacy POST with a non-JSON 200 body failed: %v", err)
	}
}

func TestGetSessionDecodesAndIgnoresUnknownFields(t *testing.T) {
	c, obs := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != PathSessionPrefix+"abc_1" {
			http.Error(w, "wrong route", 400)
			return
		}
		_, _ = w.Write([]byte(`{"session_id":"abc_1","estado_qr":"connected","enabled":true,"active":true,"extra":{"x":1}}`))
	}, nil)
	info, err := c.GetSession(context.Background(), "abc_1")
	if err != nil {
		t.Fatal(err)
	}
	if !info.Active || info.EstadoQR != StatusConnected || info.SessionID != "abc_1" {
		t.Fatalf("decoded %+v", info)
	}
	if (*obs)[0] != (observed{EndpointSession, 200}) {
		t.Fatalf("observer saw %+v", *obs)
	}
}

func TestGetSessionNotFoundIsErrNotFoundAndStatusError(t *testing.T) {
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(404)
		_, _ = w.Write([]byte(`{"message":"session not found"}`))
	}, nil)
	_, err := c.GetSession(context.Background(), "nope")
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("err %v does not match ErrNotFound", err)
	}
	var se *StatusError
	if !errors.As(err, &se) || se.Status != 404 || se.Message != "session not found" {
		t.Fatalf("err %#v is not the expected StatusError", err)
	}
	if Retryable(err) {
		t.Fatal("404 must not be retryable")
	}
}

func TestGetSessionRejectsInvalidIDWithoutARequest(t *testing.T) {
	c, obs := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {}, nil)
	if _, err := c.GetSession(context.Background(), "../etc"); err == nil {
		t.Fatal("accepted an invalid session id")
	}
	if len(*obs) != 0 {
		t.Fatal("sent a request for an invalid session id")
	}
}

func TestBatchSendsIdempotencyKeyAndDecodesResult(t *testing.T) {
	c, obs := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(HeaderIdempotencyKey) != "batch-1" {
			http.Error(w, "no key", 400)
			return
		}
		switch r.URL.Path {
		case PathQRBatch:
			var b QRBatch
			_ = json.NewDecoder(r.Body).Decode(&b)
			_ = json.NewEncoder(w).Encode(BatchResult{Success: true, Updated: len(b.QRs)})
		case PathStatusBatch:
			_, _ = w.Write([]byte(`{"success":false,"updated":1,"failed":1,"stale":2,"errors":[{"session_id":"b","error":"disabled"}]}`))
		}
	}, nil)
	res, err := c.PostQRBatch(context.Background(), "batch-1", QRBatch{QRs: []QRItem{{SessionID: "a", QR: "q", Version: 1}, {SessionID: "b", QR: "q", Version: 1}}})
	if err != nil || res.Updated != 2 || !res.Success {
		t.Fatalf("qr batch: %+v, %v", res, err)
	}
	res, err = c.PostStatusBatch(context.Background(), "batch-1", StatusBatch{Statuses: []StatusItem{{SessionID: "a", EstadoQR: StatusConnected, Version: 3}}})
	if err != nil || res.Stale != 2 || res.Failed != 1 || len(res.Errors) != 1 || res.Errors[0].SessionID != "b" {
		t.Fatalf("status batch: %+v, %v", res, err)
	}
	if len(*obs) != 2 || (*obs)[0].endpoint != EndpointQRBatch || (*obs)[1].endpoint != EndpointStatusBatch {
		t.Fatalf("observer saw %+v", *obs)
	}
}

func TestBatchMalformedTwoHundredBody(t *testing.T) {
	for _, body := range []string{"", "not json", `{"success":`} {
		c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(body))
		}, nil)
		_, err := c.PostQRBatch(context.Background(), "k", QRBatch{})
		if !errors.Is(err, ErrMalformedResponse) {
			t.Errorf("body %q: err %v, want ErrMalformedResponse", body, err)
		}
	}
}

func TestResponseBodyIsBounded(t *testing.T) {
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"success":true,"pad":"`))
		_, _ = w.Write([]byte(strings.Repeat("x", MaxResponseBytes+10)))
		_, _ = w.Write([]byte(`"}`))
	}, nil)
	_, err := c.PostQRBatch(context.Background(), "k", QRBatch{})
	if !errors.Is(err, ErrMalformedResponse) {
		t.Fatalf("oversized body: err %v, want ErrMalformedResponse", err)
	}
}

func TestStatusErrorsRetryableAndRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		status     int
		retryAfter string
		retryable  bool
		wantAfter  time.Duration
	}{
		{429, "7", true, 7 * time.Second},
		{429, now.Add(30 * time.Second).Format(http.TimeFormat), true, 30 * time.Second},
		{429, now.Add(-30 * time.Second).Format(http.TimeFormat), true, 0},
		{429, "soon", true, 0},
		{502, "", true, 0},
		{503, "1", true, time.Second},
		{504, "", true, 0},
		{500, "", false, 0},
		{401, "", false, 0},
		{422, "", false, 0},
	}
	for _, tc := range cases {
		c, obs := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
			if tc.retryAfter != "" {
				w.Header().Set("Retry-After", tc.retryAfter)
			}
			w.WriteHeader(tc.status)
			_, _ = w.Write([]byte("<html>upstream says no</html>"))
		}, func(cfg *ClientConfig) { cfg.Now = func() time.Time { return now } })
		err := c.PostStatus(context.Background(), StatusUpdate{SessionID: "s", EstadoQR: StatusPending})
		var se *StatusError
		if !errors.As(err, &se) {
			t.Fatalf("%d: err %v is not a StatusError", tc.status, err)
		}
		if se.Status != tc.status || se.RetryAfter != tc.wantAfter || se.Message != "<html>upstream says no</html>" {
			t.Errorf("%d %q: got %+v", tc.status, tc.retryAfter, se)
		}
		if Retryable(err) != tc.retryable {
			t.Errorf("%d: Retryable = %v, want %v", tc.status, !tc.retryable, tc.retryable)
		}
		if RetryAfter(err) != tc.wantAfter {
			t.Errorf("%d: RetryAfter = %v", tc.status, RetryAfter(err))
		}
		if (*obs)[0].status != tc.status {
			t.Errorf("%d: observer saw %+v", tc.status, *obs)
		}
	}
}

func TestNetworkErrorsAreRetryableCancellationIsNot(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now: connection refused
	var obsStatus []int
	c, err := NewClient(ClientConfig{BaseURL: "http://" + addr, Timeout: time.Second,
		Observer: func(_ string, status int, _ time.Duration) { obsStatus = append(obsStatus, status) }})
	if err != nil {
		t.Fatal(err)
	}
	err = c.PostQR(context.Background(), QRUpdate{SessionID: "s", QR: "q"})
	if err == nil || !Retryable(err) {
		t.Fatalf("connection refused: err %v, Retryable %v", err, Retryable(err))
	}
	if len(obsStatus) != 1 || obsStatus[0] != 0 {
		t.Fatalf("observer saw %v, want one status 0", obsStatus)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = c.PostQR(ctx, QRUpdate{SessionID: "s", QR: "q"})
	if err == nil || Retryable(err) {
		t.Fatalf("cancelled: err %v, Retryable %v", err, Retryable(err))
	}
}

func TestTimeoutIsRetryable(t *testing.T) {
	release := make(chan struct{})
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}, func(cfg *ClientConfig) { cfg.Timeout = 50 * time.Millisecond })
	defer close(release)
	err := c.PostQR(context.Background(), QRUpdate{SessionID: "s", QR: "q"})
	if err == nil || !Retryable(err) {
		t.Fatalf("timeout: err %v, Retryable %v", err, Retryable(err))
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"", "0", "5", "-3", "99999999999999999999", "Wed, 21 Oct 2015 07:28:00 GMT", "garbage"} {
		f.Add(s)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d := parseRetryAfter(v, now)
		if d < 0 || d > 366*24*time.Hour*100 {
			t.Fatalf("parseRetryAfter(%q) = %v", v, d)
		}
	})
}
