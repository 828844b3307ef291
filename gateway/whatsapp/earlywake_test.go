package whatsapp_test

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Issue 19 (chaos whatsapp-down): sessions whose dials failed through an outage back off to 8 and
// 16 s; once WhatsApp is back and one session logs in, the others come back within about
// wakeWindow (1 s) plus their handshakes instead of at the end of their backoffs. Real whatsmeow
// on a fakewa child process; the outage refuses every dial with HTTP 503.
func TestSessionsBackedOffThroughAnOutageComeBackSoonAfterOneLogsIn(t *testing.T) {
	if testing.Short() {
		t.Skip("a 15 s outage")
	}
	const n = 6
	w := newIdleCostWorld(t)
	w.pairSessions(n)
	ctx := context.Background()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("idle-%05d", i+1)
	}
	if _, err := w.wa.Unreachable(ctx, nil, time.Minute); err != nil {
		t.Fatal(err)
	}
	// Dials fail after 0, 0.5-1, 1-2, 2-4 and 4-8 s: after 15 s every session waits in its 8 s
	// or 16 s backoff.
	time.Sleep(15 * time.Second)
	for _, id := range ids {
		if info, err := w.m.Get(ctx, id); err != nil || info.Connected {
			t.Fatalf("%s during the outage: %+v, %v", id, info, err)
		}
	}
	if err := w.wa.Reachable(ctx); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	// The first login: its user starts the session again.
	if _, err := w.m.Start(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	const within = 3 * time.Second // wakeWindow, the handshakes, a loaded machine
	deadline := back.Add(20 * time.Second)
	for {
		var down []string
		for _, id := range ids {
			if info, err := w.m.Get(ctx, id); err != nil || !info.Connected {
				down = append(down, id)
			}
		}
		took := time.Since(back)
		if len(down) == 0 {
			t.Logf("every session connected %v after WhatsApp was back", took.Round(time.Millisecond))
			if took > within {
				t.Fatalf("the sessions took %v to come back after WhatsApp did and one logged in, want within %v", took, within)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v not connected %v after WhatsApp was back", down, took)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
