package fakelaravel

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"wagate/gateway/laravel"
)

// v2Headers returns the headers the gateway's client sends for body on method+path under key,
// signed with secret now.
func v2Headers(secret []byte, method, path, key, body string) map[string]string {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if key != "" {
		req.Header.Set(laravel.HeaderIdempotencyKey, key)
	}
	laravel.SignRequest(req, secret, []byte(body), time.Now())
	h := map[string]string{}
	for _, k := range []string{laravel.HeaderTimestamp, laravel.HeaderSignature, laravel.HeaderSignatureV2, laravel.HeaderNonce, laravel.HeaderIdempotencyKey} {
		h[k] = req.Header.Get(k)
	}
	return h
}

func withoutV2(h map[string]string) map[string]string {
	h[laravel.HeaderSignatureV2], h[laravel.HeaderNonce] = "", ""
	return h
}

func TestSignatureV2AndTheMigration(t *testing.T) {
	secret := []byte("s3cret")
	body := statusBatchBody(st("s1", laravel.StatusConnected, 1))
	tests := []struct {
		name      string
		requireV2 bool
		path      string
		headers   func() map[string]string
		want      int
	}{
		{"v2 accepted", false, laravel.PathStatusBatch, func() map[string]string {
			return v2Headers(secret, http.MethodPost, laravel.PathStatusBatch, "k-v2", body)
		}, 200},
		{"v2 accepted when v2 is required", true, laravel.PathStatusBatch, func() map[string]string {
			return v2Headers(secret, http.MethodPost, laravel.PathStatusBatch, "k-v2", body)
		}, 200},
		{"v2 signed for another path", false, laravel.PathStatusBatch, func() map[string]string {
			return v2Headers(secret, http.MethodPost, laravel.PathQRBatch, "k-v2", body)
		}, 401},
		{"v2 signed for another Idempotency-Key", false, laravel.PathStatusBatch, func() map[string]string {
			h := v2Headers(secret, http.MethodPost, laravel.PathStatusBatch, "k-other", body)
			h[laravel.HeaderIdempotencyKey] = "k-v2"
			return h
		}, 401},
		{"v1 accepted during the migration", false, laravel.PathStatusBatch, func() map[string]string {
			return withoutV2(v2Headers(secret, http.MethodPost, laravel.PathStatusBatch, "k-v1", body))
		}, 200},
		{"v1 refused once v2 is required", true, laravel.PathStatusBatch, func() map[string]string {
			return withoutV2(v2Headers(secret, http.MethodPost, laravel.PathStatusBatch, "k-v1", body))
		}, 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.Secret, c.RequireSignatureV2 = secret, tc.requireV2 })
			r := h.do(http.MethodPost, tc.path, body, tc.headers())
			if r.status != tc.want {
				t.Fatalf("status %d, want %d: %s", r.status, tc.want, r.body)
			}
			st, err := h.srv.State(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if applied := len(st.Sessions) > 0; applied != (tc.want == 200) {
				t.Fatalf("applied %v with status %d", applied, r.status)
			}
			if fails := h.srv.Stats().SignatureFailures; (fails > 0) != (tc.want == 401) {
				t.Fatalf("signature failures %d with status %d", fails, r.status)
			}
		})
	}
}

// A captured v2 request sent again is refused (with or without an Idempotency-Key), while the
// gateway's own client, which signs every attempt afresh, gets all its retries through.
func TestReplayedV2IsRefusedAndRetriesAreNot(t *testing.T) {
	secret := []byte("s3cret")
	h := newHarness(t, func(c *Config) { c.Secret = secret })
	for _, key := range []string{"k-replay", ""} {
		path, body := laravel.PathStatusBatch, statusBatchBody(st("s1", laravel.StatusConnected, 1))
		if key == "" {
			path, body = laravel.PathStatus, `{"session_id":"s1","estado_qr":"connected"}`
		}
		hdr := v2Headers(secret, http.MethodPost, path, key, body)
		if r := h.do(http.MethodPost, path, body, hdr); r.status != 200 {
			t.Fatalf("key %q: first request %d %s", key, r.status, r.body)
		}
		r := h.do(http.MethodPost, path, body, hdr)
		if r.status != 401 || !strings.Contains(string(r.body), "replayed") {
			t.Fatalf("key %q: replayed request %d %s, want 401 naming the replay", key, r.status, r.body)
		}
	}

	c, err := laravel.NewClient(laravel.ClientConfig{BaseURL: h.ts.URL, Token: testToken, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	batch := laravel.StatusBatch{Statuses: []laravel.StatusItem{st("s2", laravel.StatusConnected, 5)}}
	for attempt := range 3 {
		if _, err := c.PostStatusBatch(ctx, "k-retried", batch); err != nil {
			t.Fatalf("attempt %d of one batch: %v", attempt+1, err)
		}
	}
	for range 2 {
		if err := c.PostStatus(ctx, laravel.StatusUpdate{SessionID: "s3", EstadoQR: laravel.StatusPending}); err != nil {
			t.Fatalf("identical legacy post: %v", err)
		}
	}
	if got := h.srv.Stats().SignatureFailures; got != 2 {
		t.Fatalf("signature failures %d, want 2 (the two replays)", got)
	}
}
