package user

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// In the scenario's quiet window the Laravel app polls nothing: every poll due in it is skipped
// (none reaches the gateway before the window's end), and the pollers poll again after it.
func TestNoPollReachesTheGatewayInTheQuietWindowAndPollingResumesAfterIt(t *testing.T) {
	var mu sync.Mutex
	var arrivals []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrivals = append(arrivals, time.Now())
		mu.Unlock()
		_, _ = io.WriteString(w, "{}")
	}))
	t.Cleanup(srv.Close)
	polls := func() []time.Time { mu.Lock(); defer mu.Unlock(); return append([]time.Time(nil), arrivals...) }
	api, _ := newPollAPI(t, srv.URL)
	from := time.Now()
	until := from.Add(300 * time.Millisecond)
	api.QuietPolls(from, until)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for i := range 3 { // a status and two QR pollers, as a pairing user runs
		endpoint := EndpointStatus
		if i > 0 {
			endpoint = EndpointQR
		}
		p := api.NewPoller(ctx, endpoint, "s-1", nil)
		defer p.Close()
		wg.Go(func() { p.Every(ctx, 0, NewPace(5*time.Millisecond, 1, uint64(i)), nil) })
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(polls()) < 9 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	got := polls()
	if len(got) < 9 {
		t.Fatalf("%d polls within 10 s after the quiet window, want polling to resume", len(got))
	}
	for i, at := range got {
		if at.Before(until) {
			t.Fatalf("poll %d reached the gateway %s into the quiet window of %s", i, at.Sub(from), until.Sub(from))
		}
	}
}
