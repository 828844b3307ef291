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

// answers records the /_fake/state answers a handler gives.
type answers struct {
	http.Handler
	mu  sync.Mutex
	got []fakelaravel.StateChanges
}

func (a *answers) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != fakelaravel.PathState {
		a.Handler.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	a.Handler.ServeHTTP(rec, r)
	var st fakelaravel.StateChanges
	_ = json.Unmarshal(rec.Body.Bytes(), &st)
	a.mu.Lock()
	a.got = append(a.got, st)
	a.mu.Unlock()
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

func (a *answers) last() fakelaravel.StateChanges {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.got[len(a.got)-1]
}

// The watch reads Laravel's change feed: the first poll reads every session, the next ones only
// those changed since (none when nothing changed), and after a reset, which the feed answers
// with a full snapshot, the deleted sessions leave the watch's copy.
func TestLaravelWatchReadsOnlyWhatChangedSinceItsLastPoll(t *testing.T) {
	ctx := t.Context()
	srv, err := fakelaravel.New(ctx, fakelaravel.Config{Token: "tok", DBPath: t.TempDir() + "/l.db"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	rec := &answers{Handler: srv}
	hs := httptest.NewServer(rec)
	defer hs.Close()
	client, err := laravel.NewClient(laravel.ClientConfig{BaseURL: hs.URL, Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	admin := fakelaravel.NewAdminClient(hs.URL, "tok", hs.Client())
	w := newLaravelWatch(admin, truth.NewLedger(metrics.NewRegistry(nil), truth.QRTiming{}, nil))
	post := func(id string, s laravel.Status) {
		if err := client.PostStatus(ctx, laravel.StatusUpdate{SessionID: id, EstadoQR: s}); err != nil {
			t.Fatal(err)
		}
	}
	poll := func() fakelaravel.StateChanges {
		if err := w.poll(ctx); err != nil {
			t.Fatal(err)
		}
		return rec.last()
	}
	post("a", laravel.StatusPending)
	post("b", laravel.StatusPending)
	if got := poll(); !got.Full || len(got.Sessions) != 2 {
		t.Fatalf("first poll read %+v, want every session", got)
	}
	if got := poll(); got.Full || len(got.Sessions) != 0 {
		t.Fatalf("nothing changed, the poll read %+v", got)
	}
	post("b", laravel.StatusConnected)
	if got := poll(); got.Full || len(got.Sessions) != 1 || got.Sessions[0].SessionID != "b" {
		t.Fatalf("b changed, the poll read %+v", got)
	}
	if got := w.Statuses(); got["a"] != "pending" || got["b"] != "connected" {
		t.Fatalf("the watch sees %v", got)
	}
	if err := admin.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	post("c", laravel.StatusPending)
	if got := poll(); !got.Full {
		t.Fatalf("after a reset the poll read %+v, want a full snapshot", got)
	}
	if got := w.Statuses(); len(got) != 1 || got["c"] != "pending" {
		t.Fatalf("after the reset the watch sees %v, want only c", got)
	}
}
