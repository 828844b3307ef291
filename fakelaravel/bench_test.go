package fakelaravel

import (
	"bytes"
	"encoding/json"
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

// BenchmarkStateRead is one read of Laravel's state at 10,000 sessions (each with a pending
// status and a 240-byte QR) over loopback HTTP, decoded as the simulator decodes it: the whole
// state (GET /_fake/state, what the simulator read every poll before the change feed) and the
// change feed after a cursor with 100 or 0 rows changed since. bytes/read is the answer's size.
//
//	go test ./fakelaravel -run '^$' -bench StateRead -benchmem
func BenchmarkStateRead(b *testing.B) {
	const sessions, changed = 10000, 100
	ts, c := benchServer(b)
	code := "2@" + string(bytes.Repeat([]byte("x"), 238))
	for start := 0; start < sessions; start += laravel.MaxBatchItems {
		var st []laravel.StatusItem
		var qr []laravel.QRItem
		for i := start; i < min(start+laravel.MaxBatchItems, sessions); i++ {
			id := fmt.Sprintf("sess-%05d", i)
			st = append(st, laravel.StatusItem{SessionID: id, EstadoQR: laravel.StatusPending, Version: 1, EventID: "s" + id, ChangedAt: time.Now()})
			qr = append(qr, laravel.QRItem{SessionID: id, QR: code, Version: 1, EventID: "q" + id, GeneratedAt: time.Now()})
		}
		post(b, c, ts.URL+laravel.PathStatusBatch, []byte(statusBatchBody(st...)), fmt.Sprintf("s%d", start))
		post(b, c, ts.URL+laravel.PathQRBatch, []byte(qrBatchBody(qr...)), fmt.Sprintf("q%d", start))
	}
	ac := NewAdminClient(ts.URL, testToken, c)
	before, err := ac.GetStateSince(b.Context(), 0)
	if err != nil || len(before.Sessions) != sessions {
		b.Fatalf("seeded %d sessions: %v", len(before.Sessions), err)
	}
	var st []laravel.StatusItem
	for i := range changed {
		st = append(st, laravel.StatusItem{SessionID: fmt.Sprintf("sess-%05d", i*97), EstadoQR: laravel.StatusConnected, Version: 2, EventID: fmt.Sprint("c", i), ChangedAt: time.Now()})
	}
	post(b, c, ts.URL+laravel.PathStatusBatch, []byte(statusBatchBody(st...)), "changed")
	after, err := ac.GetStateSince(b.Context(), before.Cursor)
	if err != nil || len(after.Sessions) != changed {
		b.Fatalf("changes since the seed: %d: %v", len(after.Sessions), err)
	}
	read := func(b *testing.B, path string, want int) {
		var n int64
		for b.Loop() {
			req, _ := http.NewRequestWithContext(b.Context(), http.MethodGet, ts.URL+path, nil)
			req.Header.Set("Authorization", "Bearer "+testToken)
			resp, err := c.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			var got StateChanges
			if err != nil || json.Unmarshal(body, &got) != nil || len(got.Sessions) != want {
				b.Fatalf("%s: %d sessions, %v", path, len(got.Sessions), err)
			}
			n += int64(len(body))
		}
		b.ReportMetric(float64(n)/float64(b.N), "bytes/read")
	}
	b.Run("full_state", func(b *testing.B) { read(b, PathState, sessions) })
	b.Run("since_100_changed", func(b *testing.B) { read(b, fmt.Sprintf("%s?since=%d", PathState, before.Cursor), changed) })
	b.Run("since_0_changed", func(b *testing.B) { read(b, fmt.Sprintf("%s?since=%d", PathState, after.Cursor), 0) })
}
