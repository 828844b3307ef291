package run

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"wagate/fakelaravel"
	"wagate/gateway/laravel"
	"wagate/simulator/metrics"
	"wagate/simulator/truth"
)

// Two polls that overlap (the end of a run polls while the background loop does) must feed the
// ledger in the order Laravel was read: the first read (connected v3) answered after the second
// (disconnected v4) would otherwise look like Laravel applying v3 over v4, a stale overwrite.
func TestOverlappingPollsFeedTheLedgerInReadOrder(t *testing.T) {
	var requests atomic.Int32
	secondAnswered := make(chan struct{})
	var once sync.Once
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		row := fakelaravel.SessionState{SessionID: "s1", EstadoQR: laravel.StatusConnected, StatusVersion: 3}
		if requests.Add(1) == 1 {
			// The first read is slow: it answers after the second one (or, when polls do not
			// overlap, after a while).
			select {
			case <-secondAnswered:
				time.Sleep(50 * time.Millisecond) // let the second poll feed the ledger first
			case <-time.After(300 * time.Millisecond):
			}
		} else {
			row = fakelaravel.SessionState{SessionID: "s1", EstadoQR: laravel.StatusDisconnected, StatusVersion: 4}
			defer once.Do(func() { close(secondAnswered) })
		}
		_ = json.NewEncoder(w).Encode(fakelaravel.State{Sessions: []fakelaravel.SessionState{row}})
	}))
	defer hs.Close()
	ledger := truth.NewLedger(metrics.NewRegistry(nil), truth.QRTiming{}, nil)
	ledger.Started("s1", "15550001", time.Now(), nil)
	w := newLaravelWatch(fakelaravel.NewAdminClient(hs.URL, "tok", hs.Client()), ledger)

	ctx := context.Background()
	var wg sync.WaitGroup
	wg.Go(func() { _ = w.poll(ctx) })
	for requests.Load() == 0 {
		time.Sleep(time.Millisecond) // the first poll's read is under way
	}
	wg.Go(func() { _ = w.poll(ctx) })
	wg.Wait()
	if got := ledger.Finish(map[string]truth.State{"s1": {Status: laravel.StatusDisconnected, Version: 4}}, time.Now()); got.Stale != 0 || got.Lost != 0 {
		t.Fatalf("overlapping polls judged %+v: %v", got, got.Mismatches)
	}
}
