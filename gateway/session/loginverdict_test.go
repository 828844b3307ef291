package session

import "testing"

// Issue 18: under CPU starvation whatsmeow took 8-12 s over a freshly paired device's <success>,
// and the login watch cut 258 logins in one run that were under way, each adding a handshake and
// a login to a process already behind. The watch waits for a login WhatsApp accepted and the
// client is finishing; it reconnects only a connection from which nothing arrived.
func TestTheLoginWatchWaitsForALoginUnderWayAndReconnectsOnlyASilentOne(t *testing.T) {
	for _, tc := range []struct {
		name                         string
		current, loggedIn, loggingIn bool
		want                         loginVerdict
	}{
		{"logged in: nothing to do", true, true, false, loginNotWatched},
		{"logged in while finishing (reported both): nothing to do", true, true, true, loginNotWatched},
		{"<success> arrived, Connected not yet: wait again", true, false, true, loginUnderWay},
		{"nothing arrived: reconnect", true, false, false, loginStalled},
		{"connection replaced or dropped since: not watched", false, false, false, loginNotWatched},
		{"replaced while its login was under way: not watched", false, false, true, loginNotWatched},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := judgeLogin(tc.current, tc.loggedIn, tc.loggingIn); got != tc.want {
				t.Fatalf("judgeLogin(current %v, loggedIn %v, loggingIn %v) = %v, want %v",
					tc.current, tc.loggedIn, tc.loggingIn, got, tc.want)
			}
		})
	}
}
