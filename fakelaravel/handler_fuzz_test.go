package fakelaravel

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"wagate/gateway/laravel"
)

// FuzzStatusBatchEndpoint sends arbitrary bodies through the whole handler (pool, validation,
// SQLite): every answer is 200 or 422, a 422 changes nothing, and a 200 accounts for every item.
func FuzzStatusBatchEndpoint(f *testing.F) {
	f.Add([]byte(`{"statuses":[{"session_id":"a","estado_qr":"connected","version":1,"event_id":"e","changed_at":"2026-11-27T12:00:00Z"}]}`))
	f.Add([]byte(`{"statuses":[{"session_id":"a","estado_qr":"connected","version":2,"event_id":"e","changed_at":"2026-11-27T12:00:00Z"},{"session_id":"b","estado_qr":"nope"}]}`))
	f.Add([]byte(`{"statuses":[{"session_id":"a","estado_qr":"expired","version":1,"event_id":"e","changed_at":"2026-11-27T12:00:00Z"},{"session_id":"a","estado_qr":"pending","version":3,"event_id":"e","changed_at":"2026-11-27T12:00:00Z"}]}`))
	f.Add([]byte(`not json`))
	srv, err := New(f.Context(), Config{Token: testToken, Capacity: fastCapacity, DBPath: f.TempDir() + "/fuzz.sqlite"})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { srv.Close() })
	n := 0
	f.Fuzz(func(t *testing.T, body []byte) {
		n++
		before, err := srv.State(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPost, laravel.PathStatusBatch, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set(laravel.HeaderIdempotencyKey, fmt.Sprintf("fuzz-%d", n))
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		after, err := srv.State(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		switch rec.Code {
		case http.StatusOK:
			batch, verr := DecodeStatusBatch(body, 0)
			if verr != nil {
				t.Fatalf("200 for a body the decoder rejects: %s", body)
			}
			var res laravel.BatchResult
			if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil {
				t.Fatal(err)
			}
			if res.Updated+res.Stale+res.Failed != len(batch.Statuses) {
				t.Fatalf("result %+v does not account for %d items", res, len(batch.Statuses))
			}
		case http.StatusUnprocessableEntity:
			b1, _ := json.Marshal(before)
			b2, _ := json.Marshal(after)
			if !bytes.Equal(b1, b2) {
				t.Fatalf("a rejected batch changed the state: %s", body)
			}
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
	})
}
