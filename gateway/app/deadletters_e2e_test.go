package app_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"wagate/fakelaravel"
	"wagate/gateway/config"
	"wagate/gateway/laravel"
	"wagate/internal/proctest"
)

// Laravel refuses a session's items one by one (the only thing that dead-letters); once the cause
// is fixed, POST /dead-letters/redrive sends them again with their original versions and Laravel
// applies them. Every request is signed (v1 and v2) and fakelaravel refuses replays: the gateway's
// retries and re-drives are never taken for one.
func TestDeadLettersAreListedAndRedrivenEndToEnd(t *testing.T) {
	ctx := context.Background()
	const secret = "e2e-signing-secret"
	w := newWorld(t, worldOptions{mode: config.ModeBatch, laravel: fakelaravel.Config{Token: laravelToken, Secret: []byte(secret)},
		configure: func(cfg *config.Config) {
			cfg.Batch.Interval = 200 * time.Millisecond
			cfg.LaravelSecret = secret
		}})
	lv := w.laravel
	// Before any session starts: Laravel refuses every item of dl_refused.
	if err := lv.SetFaults(fakelaravel.Faults{Windows: []fakelaravel.FaultWindow{
		{Kind: fakelaravel.FaultRefuseItems, Rate: 1, Sessions: []string{"dl_refused"}},
	}}); err != nil {
		t.Fatal(err)
	}
	c := w.client()

	// Two sessions start: Laravel applies dl_fine's pending state and QR, refuses dl_refused's.
	for _, id := range []string{"dl_fine", "dl_refused"} {
		if code := c.call("POST", "/sessions", map[string]string{"session_id": id}, nil); code != 200 {
			t.Fatalf("start %s: %d", id, code)
		}
	}
	waitLaravelStatus(t, ctx, w, "dl_fine", laravel.StatusPending)
	type entry struct {
		SessionID string `json:"session_id"`
		Kind      string `json:"kind"`
		Version   int64  `json:"version"`
		EventID   string `json:"event_id"`
		Reason    string `json:"reason"`
	}
	var page struct {
		DeadLetters []entry `json:"dead_letters"`
		NextCursor  string  `json:"next_cursor"`
	}
	proctest.Eventually(t, "dl_refused's status and QR dead-lettered", 30*time.Second, func() (bool, string) {
		code := c.call("GET", "/dead-letters?limit=1000", nil, &page)
		kinds := map[string]bool{}
		for _, d := range page.DeadLetters {
			if d.SessionID != "dl_refused" || !strings.Contains(d.Reason, fakelaravel.RefusedItemError) {
				t.Fatalf("unexpected dead letter %+v", d)
			}
			kinds[d.Kind] = true
		}
		return code == 200 && kinds["status"] && kinds["qr"], fmt.Sprintf("%d %+v", code, page)
	})
	if _, ok := laravelSession(ctx, w, "dl_refused"); ok {
		t.Fatal("Laravel applied a refused item")
	}

	// The cause is fixed; the re-drive re-appends every dead letter of the session.
	if err := lv.SetFaults(fakelaravel.Faults{}); err != nil {
		t.Fatal(err)
	}
	var res struct {
		Matched, Redriven int
		More              bool
	}
	if code := c.call("POST", "/dead-letters/redrive", map[string]string{"session_id": "dl_refused"}, &res); code != 200 || res.Redriven == 0 || res.More {
		t.Fatalf("redrive: %d %+v", code, res)
	}
	var lastStatus int64
	for _, d := range page.DeadLetters {
		if d.Kind == "status" && d.Version > lastStatus {
			lastStatus = d.Version
		}
	}
	proctest.Eventually(t, "Laravel to apply the re-driven events with their original versions", 30*time.Second, func() (bool, string) {
		s, ok := laravelSession(ctx, w, "dl_refused")
		return ok && s.EstadoQR == laravel.StatusPending && s.StatusVersion == lastStatus && s.QR != "", fmt.Sprintf("%+v", s)
	})
	if code := c.call("GET", "/dead-letters", nil, &page); code != 200 || len(page.DeadLetters) != 0 {
		t.Fatalf("dead letters after the re-drive: %d %+v", code, page.DeadLetters)
	}
	if st := lv.Stats(); st.SignatureFailures != 0 {
		t.Fatalf("fakelaravel refused %d signatures: the gateway's own attempts must never look like replays", st.SignatureFailures)
	}
	if want := fmt.Sprintf("wagate_dead_letters_redriven_total %d", res.Redriven); !strings.Contains(c.metrics(), want) {
		t.Fatalf("/metrics lacks %q", want)
	}
}
