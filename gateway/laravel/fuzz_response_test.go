package laravel

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fuzzAnswer is what the fake Laravel answers next.
type fuzzAnswer struct {
	status     int
	retryAfter string
	body       []byte
}

// Whatever Laravel answers (status, Retry-After, body), the client never panics, a 2xx either
// decodes or fails with ErrMalformedResponse, any other status is a *StatusError with that status,
// a bounded Retry-After and a bounded message, and no error ever carries the client's own token or
// signing secret (a Laravel that echoes the request must not leak them into the gateway's logs).
func FuzzBatchAndSessionResponses(f *testing.F) {
	seeds := []fuzzAnswer{
		{200, "", []byte(`{"success":true,"updated":2,"failed":0,"stale":1,"errors":[]}`)},
		{200, "", []byte(`{"success":false,"updated":0,"failed":1,"errors":[{"session_id":"s1","error":"unknown"}]}`)},
		{200, "", []byte(`{"session_id":"s1","enabled":true,"estado_qr":"connected"}`)},
		{200, "", []byte(``)},
		{200, "", []byte(`{"updated":"many"}`)},
		{200, "", []byte(`[1,2,3]`)},
		{201, "", []byte("\xff\xfe")},
		{429, "5", []byte(`{"message":"Too Many Attempts."}`)},
		{503, "Wed, 21 Oct 2015 07:28:00 GMT", []byte(`<html>maintenance</html>`)},
		{503, "99999999999999999999", nil},
		{401, "", []byte(`{"message":"bad token fuzz-token-0123456789abcdef"}`)},
		{422, "", []byte(`{"message":"The given data was invalid.","errors":{"statuses.0.estado_qr":["bad"]}}`)},
		{500, "", []byte(strings.Repeat("x", 20000))},
		{302, "", nil},
	}
	for _, s := range seeds {
		f.Add(s.status, s.retryAfter, s.body)
	}
	const secretToken, secretKey = "fuzz-token-0123456789abcdef", "fuzz-secret-abcdef0123456789"
	var mu sync.Mutex
	var next fuzzAnswer
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		a := next
		mu.Unlock()
		if a.retryAfter != "" {
			w.Header().Set("Retry-After", a.retryAfter)
		}
		w.WriteHeader(a.status)
		_, _ = w.Write(a.body)
	}))
	defer srv.Close()
	c, err := NewClient(ClientConfig{BaseURL: srv.URL, Token: secretToken, Secret: []byte(secretKey), Timeout: 5 * time.Second})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, status int, retryAfter string, body []byte) {
		if status < 200 || status > 599 || (status >= 300 && status < 400) || status == http.StatusNoContent || status == http.StatusNotModified {
			return // informational and redirect answers are net/http's business, not the parser's
		}
		if len(retryAfter) > 200 || strings.IndexFunc(retryAfter, func(r rune) bool { return r < 0x20 || r > 0x7e }) >= 0 {
			return // a header value net/http would not carry
		}
		// A Laravel that echoes the secrets back.
		body = append(body, []byte(" " + secretToken + " " + secretKey)[:len(body)%3*20]...)
		mu.Lock()
		next = fuzzAnswer{status, retryAfter, body}
		mu.Unlock()
		res, err := c.PostStatusBatch(context.Background(), "key-1", StatusBatch{Statuses: []StatusItem{{SessionID: "s1", EstadoQR: "connected", Version: 1, EventID: "e1", ChangedAt: time.Unix(0, 0)}}})
		check(t, status, res.Errors != nil || res.Updated >= 0, err, secretToken, secretKey)
		_, err = c.GetSession(context.Background(), "s1")
		check(t, status, true, err, secretToken, secretKey)
	})
}

func check(t *testing.T, status int, _ bool, err error, secrets ...string) {
	t.Helper()
	if err != nil {
		for _, s := range secrets {
			if strings.Contains(err.Error(), s) {
				t.Fatalf("error carries a secret: %v", err)
			}
		}
	}
	if status >= 200 && status < 300 {
		if err != nil && !errors.Is(err, ErrMalformedResponse) {
			t.Fatalf("2xx answer: error %v is not ErrMalformedResponse", err)
		}
		return
	}
	var se *StatusError
	if !errors.As(err, &se) {
		t.Fatalf("status %d: error %v is not a *StatusError", status, err)
	}
	if se.Status != status {
		t.Fatalf("StatusError.Status %d, answered %d", se.Status, status)
	}
	if se.RetryAfter < 0 || se.RetryAfter > maxRetryAfter {
		t.Fatalf("RetryAfter %v out of bounds", se.RetryAfter)
	}
	if len(se.Message) > maxErrorBytes+3 {
		t.Fatalf("message of %d bytes", len(se.Message))
	}
}

// Regression (found by FuzzBatchAndSessionResponses): Laravel's error body echoing the bearer
// token or the signing secret put them into StatusError.Message and so into the gateway's logs.
func TestAnEchoingLaravelNeverGetsTheSecretsIntoErrors(t *testing.T) {
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"message":"token ` + r.Header.Get("Authorization") + ` refused; secret s3cret-signing-key"}`))
	}, func(cfg *ClientConfig) {
		cfg.Token = "echoed-token-0123456789"
		cfg.Secret = []byte("s3cret-signing-key")
	})
	err := c.PostQR(context.Background(), QRUpdate{SessionID: "s", QR: "q"})
	var se *StatusError
	if !errors.As(err, &se) || se.Status != http.StatusUnauthorized {
		t.Fatalf("err %v", err)
	}
	if strings.Contains(err.Error(), "echoed-token-0123456789") || strings.Contains(err.Error(), "s3cret-signing-key") {
		t.Fatalf("a secret in the error: %v", err)
	}
	if !strings.Contains(se.Message, redacted) {
		t.Fatalf("message %q lost its shape", se.Message)
	}
}
