package calibrate

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"wagate/gateway/laravel"
)

// contractStub answers like a Laravel app that accepts everything, and checks what it receives.
type contractStub struct {
	t       *testing.T
	gets    atomic.Int64
	batches atomic.Int64
	items   atomic.Int64
	bad     atomic.Int64
}

func (s *contractStub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer tok" {
		s.bad.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	switch {
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, laravel.PathSessionPrefix):
		s.gets.Add(1)
		if !laravel.ValidSessionID(strings.TrimPrefix(r.URL.Path, laravel.PathSessionPrefix)) {
			s.bad.Add(1)
		}
		_ = json.NewEncoder(w).Encode(laravel.SessionInfo{})
	case r.Method == http.MethodPost && r.URL.Path == laravel.PathStatusBatch:
		var b laravel.StatusBatch
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &b); err != nil || r.Header.Get(laravel.HeaderIdempotencyKey) == "" {
			s.bad.Add(1)
		}
		seen := map[string]bool{}
		for _, it := range b.Statuses {
			if seen[it.SessionID] || !it.EstadoQR.Valid() || it.Version < 1 || it.ChangedAt.IsZero() {
				s.bad.Add(1)
			}
			seen[it.SessionID] = true
		}
		s.batches.Add(1)
		s.items.Add(int64(len(b.Statuses)))
		_ = json.NewEncoder(w).Encode(laravel.BatchResult{Success: true, Updated: len(b.Statuses), Errors: []laravel.ItemError{}})
	default:
		s.bad.Add(1)
		w.WriteHeader(http.StatusNotFound)
	}
}

func stubTarget(t *testing.T, h http.Handler) Target {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return Target{Name: "stub", BaseURL: srv.URL, Token: "tok", Sessions: 120}
}

func TestClosedLoopSendsValidRequestsUpToItsBudget(t *testing.T) {
	stub := &contractStub{t: t}
	target := stubTarget(t, stub)
	client := NewClient()
	defer client.CloseIdleConnections()

	r := ClosedLoop(context.Background(), target, client, KindPost50, 4, time.Minute, 40)
	if r.Sent != 40 || r.OK() != 40 || r.Status[200] != 40 {
		t.Fatalf("sent %d, ok %d, statuses %v; want 40 answered 200", r.Sent, r.OK(), r.Status)
	}
	if stub.batches.Load() != 40 || stub.items.Load() != 40*50 {
		t.Fatalf("stub saw %d batches, %d items", stub.batches.Load(), stub.items.Load())
	}
	g := ClosedLoop(context.Background(), target, client, KindGet, 2, time.Minute, 10)
	if g.OK() != 10 || stub.gets.Load() != 10 {
		t.Fatalf("GET: ok %d, stub saw %d", g.OK(), stub.gets.Load())
	}
	if stub.bad.Load() != 0 {
		t.Fatalf("%d malformed requests", stub.bad.Load())
	}
}

func TestSeedCreatesEverySession(t *testing.T) {
	stub := &contractStub{t: t}
	target := stubTarget(t, stub)
	target.Sessions = 1200
	if err := Seed(context.Background(), target, NewClient()); err != nil {
		t.Fatal(err)
	}
	// 1200 sessions: batches of 500, 500 and 200.
	if stub.batches.Load() != 3 || stub.items.Load() != 1200 || stub.bad.Load() != 0 {
		t.Fatalf("batches %d, items %d, bad %d", stub.batches.Load(), stub.items.Load(), stub.bad.Load())
	}
}

func TestOpenLoopDropsArrivalsBeyondTheInFlightCap(t *testing.T) {
	release := make(chan struct{})
	var arrived atomic.Int64
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Add(1)
		<-release
		w.WriteHeader(http.StatusBadGateway)
	})
	target := stubTarget(t, slow)
	done := make(chan *Result)
	go func() {
		// 20 arrivals as fast as the scheduler allows; at most 3 outstanding.
		done <- OpenLoop(context.Background(), target, NewClient(), KindGet, 1e6, time.Hour, 0, 20, 3, 1)
	}()
	for arrived.Load() < 3 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	r := <-done
	if r.Sent+r.Dropped != 20 {
		t.Fatalf("sent %d + dropped %d != 20", r.Sent, r.Dropped)
	}
	if r.Dropped == 0 || r.Status[502] != r.Sent || r.OK() != 0 || r.First502 <= 0 {
		t.Fatalf("dropped %d, statuses %v, ok %d, first 502 %v", r.Dropped, r.Status, r.OK(), r.First502)
	}
	if r.Fraction(502) != 1 {
		t.Fatalf("share of 502 = %v", r.Fraction(502))
	}
}

func TestPercentileInterpolatesLikeK6(t *testing.T) {
	r := &Result{ok: []time.Duration{10, 20, 30, 40, 50}}
	for p, want := range map[float64]time.Duration{0: 10, 50: 30, 90: 46, 100: 50} {
		if got := r.Percentile(p); got != want {
			t.Errorf("p%v = %v, want %v", p, got, want)
		}
	}
	if (&Result{}).Percentile(50) != 0 {
		t.Error("percentile of nothing is not 0")
	}
}
