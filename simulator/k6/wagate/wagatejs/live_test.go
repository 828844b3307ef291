package wagatejs_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"wagate/simulator/k6/js"
)

// The live loop of scenarios/k6/lib/laravel-app.js (a paired session's life in the k6 scripts)
// polls the session's status at the behaviour's pace, from its first poll until the end of the
// lifetime, while the messages due are sent in between, and logs out at the end, after which it
// makes no request. Its deadlines are on the loop's own clock (the time it asked to sleep), so
// how many polls fit in the lifetime does not depend on how late the machine wakes it.
func TestTheLibsLiveLoopPollsAtItsPaceSendsWhenDueAndLogsOutAtItsEnd(t *testing.T) {
	lib, err := filepath.Abs(filepath.Join("..", "..", "..", "..", "scenarios", "k6", "lib", "laravel-app.js"))
	if err != nil {
		t.Fatal(err)
	}
	var (
		interval  = 0.05  // statusPollInterval, s
		jitter    = 0.1   // user.PollJitter: think times are interval x (1 ± jitter)
		firstPoll = 0.025 // s after the pairing
		lifetime  = 0.6   // s
	)
	// The polls due before the end: the first, then one per think time.
	minPolls := int((lifetime-firstPoll)/(interval*(1+jitter))) + 1
	maxPolls := int((lifetime-firstPoll)/(interval*(1-jitter))) + 1
	for _, tc := range []struct {
		name              string
		pollsInline       bool
		messagesPerMinute float64 // 1200: 20 a second, none in 0.6 s with probability e^-12
		polls, sends      bool
	}{
		{name: "status polls alone", pollsInline: true, polls: true},
		{name: "messages alone", messagesPerMinute: 1200, sends: true},
		{name: "status polls and messages", pollsInline: true, messagesPerMinute: 1200, polls: true, sends: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &gateway{}
			vu, _ := newVU(t, fmt.Sprintf(`import wagate from "k6/x/wagate";
import { live } from %q;
const b = { pollsInline: %t, statusPollInterval: %g, sessionLifetime: [%g, %g], logoutAtEnd: 1, messagesPerMinute: %g };
export default function () {
  wagate.startSession("s1");
  live("s1", b, %g);
}`, lib, tc.pollsInline, interval, lifetime, lifetime, tc.messagesPerMinute, firstPoll), g)
			if err := vu.RunIteration(context.Background(), js.Iteration{Scenario: "default", Exec: "default"}); err != nil {
				t.Fatal(err)
			}
			g.mu.Lock()
			defer g.mu.Unlock()
			if len(g.requests) < 2 || g.requests[0].method != http.MethodPost || g.requests[0].path != "/sessions" {
				t.Fatalf("requests %v: want the start first", g.requests)
			}
			began, last := g.requests[0].at, g.requests[len(g.requests)-1]
			if last.method != http.MethodDelete || last.path != "/sessions/s1" {
				t.Errorf("last request %s %s, want the logout (DELETE /sessions/s1)", last.method, last.path)
			}
			if d := last.at.Sub(began); d < time.Duration(lifetime*float64(time.Second)) {
				t.Errorf("logged out %v after the start, before the lifetime of %gs ended", d, lifetime)
			}
			var polls, sends, logouts int
			var prevPoll time.Time
			for _, r := range g.requests[1:] {
				switch {
				case r.method == http.MethodGet && r.path == "/sessions/s1":
					// After each answer the poller thinks at least interval x (1 - jitter).
					if polls > 0 && r.at.Sub(prevPoll) < time.Duration(interval*(1-jitter)*float64(time.Second))-2*time.Millisecond {
						t.Errorf("poll %d came %v after the previous one, want at least %.0f ms", polls+1, r.at.Sub(prevPoll), interval*(1-jitter)*1000)
					}
					polls++
					prevPoll = r.at
				case r.method == http.MethodPost && r.path == "/sessions/s1/messages":
					sends++
				case r.method == http.MethodDelete:
					logouts++
				default:
					t.Errorf("unexpected request %s %s", r.method, r.path)
				}
			}
			if tc.polls && (polls < minPolls || polls > maxPolls) {
				t.Errorf("%d status polls, want %d to %d", polls, minPolls, maxPolls)
			}
			if !tc.polls && polls != 0 {
				t.Errorf("%d status polls, want none (pollsInline off)", polls)
			}
			if tc.sends != (sends > 0) {
				t.Errorf("%d messages sent, want some: %t", sends, tc.sends)
			}
			if logouts != 1 {
				t.Errorf("%d logouts, want 1", logouts)
			}
		})
	}
}
