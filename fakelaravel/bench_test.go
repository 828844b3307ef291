package fakelaravel

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"wagate/gateway/laravel"
)

// benchServer is fakelaravel with a zero-cost capacity model, so only HTTP and SQLite are measured.
func benchServer(b *testing.B) (*httptest.Server, *http.Client) {
	b.Helper()
	srv, err := New(b.Context(), Config{
		Token: testToken, DBPath: b.TempDir() + "/bench.sqlite",
		Capacity: CapacityModel{Workers: 16, Backlog: 511},
	})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	b.Cleanup(func() { ts.Close(); srv.Close() })
	return ts, ts.Client()
}

func post(b *testing.B, c *http.Client, url string, body []byte, key string) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set(laravel.HeaderIdempotencyKey, key)
	}
	resp, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body) //nolint:errcheck
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("status %d", resp.StatusCode)
	}
}

// BenchmarkFiftyStatusChanges applies 50 status changes per op: as one 50-item batch, as 50
// legacy single-item requests, and as 50 one-item batches. Compare ns/op (and ns/item).
func BenchmarkFiftyStatusChanges(b *testing.B) {
	const n = 50
	states := laravel.Statuses
	b.Run("batch_of_50", func(b *testing.B) {
		ts, c := benchServer(b)
		op := 0
		for b.Loop() {
			op++
			items := make([]laravel.StatusItem, n)
			for i := range items {
				items[i] = laravel.StatusItem{SessionID: fmt.Sprintf("s%d", i), EstadoQR: states[op%len(states)], Version: int64(op), EventID: fmt.Sprintf("e%d-%d", op, i), ChangedAt: time.Now()}
			}
			body := []byte(statusBatchBody(items...))
			post(b, c, ts.URL+laravel.PathStatusBatch, body, fmt.Sprintf("k%d", op))
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/item")
	})
	b.Run("50_legacy_requests", func(b *testing.B) {
		ts, c := benchServer(b)
		op := 0
		for b.Loop() {
			op++
			for i := range n {
				body := fmt.Appendf(nil, `{"session_id":"s%d","estado_qr":%q}`, i, states[op%len(states)])
				post(b, c, ts.URL+laravel.PathStatus, body, "")
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/item")
	})
	b.Run("50_one_item_batches", func(b *testing.B) {
		ts, c := benchServer(b)
		op := 0
		for b.Loop() {
			op++
			for i := range n {
				body := []byte(statusBatchBody(laravel.StatusItem{SessionID: fmt.Sprintf("s%d", i), EstadoQR: states[op%len(states)], Version: int64(op), EventID: fmt.Sprintf("e%d-%d", op, i), ChangedAt: time.Now()}))
				post(b, c, ts.URL+laravel.PathStatusBatch, body, fmt.Sprintf("k%d-%d", op, i))
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/item")
	})
}
