package laravelapp_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"wagate/fakelaravel/conform"
	"wagate/gateway/laravel"
)

// The app's middleware accepts the gateway's v2 signatures and refuses a replayed one; the
// conformance check (run by TestReferenceAppPassesTheConformanceCheck) covers the rest. Here: a
// v2 request is refused when sent again, with and without an Idempotency-Key, while the gateway's
// client, which signs every attempt afresh, gets its retries of one batch through.
func TestReferenceAppRefusesReplayedV2Requests(t *testing.T) {
	a := startApp(t)
	ctx := context.Background()
	for _, tc := range []struct{ path, key, body string }{
		{laravel.PathStatusBatch, "replay-" + randomHex(4), `{"statuses":[{"session_id":"sigtest-` + randomHex(4) + `","estado_qr":"connected","version":1,"event_id":"e1","changed_at":"2026-01-01T00:00:00Z"}]}`},
		{laravel.PathStatus, "", `{"session_id":"sigtest-` + randomHex(4) + `","estado_qr":"connected"}`},
	} {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.url+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+a.token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		if tc.key != "" {
			req.Header.Set(laravel.HeaderIdempotencyKey, tc.key)
		}
		laravel.SignRequest(req, a.secret, []byte(tc.body), time.Now())
		req.Header.Del(laravel.HeaderSignature) // v2 only: nothing else to fall back on
		send := func() (int, string) {
			r := req.Clone(ctx)
			r.Body = io.NopCloser(strings.NewReader(tc.body))
			r.ContentLength = int64(len(tc.body))
			resp, err := http.DefaultClient.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		if code, body := send(); code != http.StatusOK {
			t.Fatalf("%s: first v2 request %d %s", tc.path, code, body)
		}
		if code, body := send(); code != http.StatusUnauthorized || !strings.Contains(body, "Replayed") {
			t.Fatalf("%s: replayed v2 request %d %s, want 401 naming the replay", tc.path, code, body)
		}
	}

	c, err := laravel.NewClient(laravel.ClientConfig{BaseURL: a.url, Token: a.token, Secret: a.secret})
	if err != nil {
		t.Fatal(err)
	}
	batch := laravel.StatusBatch{Statuses: []laravel.StatusItem{{SessionID: "sigtest-retry-" + randomHex(4), EstadoQR: laravel.StatusConnected, Version: 3, EventID: "e3", ChangedAt: time.Now().UTC()}}}
	key := "retried-" + randomHex(8)
	for attempt := range 3 {
		if _, err := c.PostStatusBatch(ctx, key, batch); err != nil {
			t.Fatalf("attempt %d of one batch under one Idempotency-Key: %v", attempt+1, err)
		}
	}
}

// Once WAGATE_REQUIRE_SIGNATURE_V2 is on (the end of the migration), the app refuses v1-only
// requests; the conformance check, told so, passes every other check too.
func TestReferenceAppRequiresV2WhenConfigured(t *testing.T) {
	startApp(t) // skips without php-fpm
	strict, stop, err := launch("WAGATE_LARAVEL_REQUIRE_SIGNATURE_V2=true")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	var log bytes.Buffer
	rep, err := conform.Run(context.Background(), conform.Options{URL: strict.url, Token: strict.token, Secret: strict.secret, RequireSignatureV2: true, Out: &log})
	if err != nil {
		t.Fatalf("conform: %v\n%s", err, log.String())
	}
	if !rep.Passed() {
		t.Fatalf("failed checks %v:\n%s", rep.Failed(), log.String())
	}
	if !strings.Contains(log.String(), "PASS  signature v1: a v1-only request is 401 once v2 is required") {
		t.Fatalf("the v1 refusal was not checked:\n%s", log.String())
	}
}

// BenchmarkReferenceAppSignature compares one legacy status post signed v1 only (the body HMAC)
// with one signed v2 only (the canonical HMAC plus the replay table's insert) on the real app.
func BenchmarkReferenceAppSignature(b *testing.B) {
	a := startApp(b)
	ctx := context.Background()
	for _, version := range []string{"v1", "v2"} {
		b.Run(version, func(b *testing.B) {
			body := `{"session_id":"sigbench-` + version + `","estado_qr":"connected"}`
			for i := 0; i < b.N; i++ {
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.url+laravel.PathStatus, strings.NewReader(body))
				if err != nil {
					b.Fatal(err)
				}
				req.Header.Set("Authorization", "Bearer "+a.token)
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", "application/json")
				laravel.SignRequest(req, a.secret, []byte(body), time.Now())
				if version == "v1" {
					req.Header.Del(laravel.HeaderSignatureV2)
					req.Header.Del(laravel.HeaderNonce)
				} else {
					req.Header.Del(laravel.HeaderSignature)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
		})
	}
}
