package session_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"wagate/gateway/laravel"
	"wagate/gateway/session"
)

// Issue 19, whatsapp-down: a reconnect of a paired device whose connect succeeds and then reports
// nothing (whatsmeow's handshake race: the socket closed right after the client's last handshake
// message, before whatsmeow set its disconnect handler) is torn down after PairLoginTimeout and
// connected again; before, the session held that dead connection and stayed disconnected for good.
func TestAReconnectThatNeitherLogsInNorReportsIsTornDownAndRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, c := pairedRig(t)
		defer r.close()
		r.driver.LoginUnanswered.Store(true)
		c.DropAndStayDown()
		synctest.Wait()
		silent := r.driver.Conn("s1")
		if r.driver.Opens() != 2 || silent.LoggedIn() {
			t.Fatalf("opens %d, the reconnect logged in %v: want one reconnect that never logs in", r.driver.Opens(), silent.LoggedIn())
		}
		time.Sleep(20*time.Second - time.Millisecond) // the default PairLoginTimeout
		synctest.Wait()
		if r.driver.Opens() != 2 {
			t.Fatal("the silent connection was torn down before the login timeout")
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if r.driver.Opens() != 3 || !silent.Released() {
			t.Fatalf("opens %d, silent connection released %v: want it torn down and a new connect", r.driver.Opens(), silent.Released())
		}
		r.driver.LoginUnanswered.Store(false) // WhatsApp answers again
		time.Sleep(20 * time.Second)
		synctest.Wait()
		if info := r.info("s1"); info.Status != laravel.StatusConnected || !info.Connected {
			t.Fatalf("after WhatsApp answered again the session is %+v", info)
		}
		r.wantEvents("s1", "status:pending", "qr:code-1", "status:connected", "status:disconnected", "status:connected")
	})
}

// Issue 19, whatsapp-down at share < 1: WhatsApp cuts every login of the device while the outage
// lasts. Each connection dropped before it logged in, and the session reconnected at once: 10-20
// dials a second per session. It now waits 1 s, 2 s, 4 s... (with jitter) between such drops, and
// reconnects once the outage ends. Real time: a tight loop cannot be observed in a synctest bubble
// (its zero-delay timers never let the fake clock move on).
func TestAConnectionCutBeforeEveryLoginIsRetriedWithBackoffNotAtOnce(t *testing.T) {
	r := newRig(t, session.Config{})
	defer r.close()
	if _, err := r.m.Start(context.Background(), "s1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the QR code", func() bool { return len(r.sink.Of("s1")) >= 2 })
	c := r.driver.Conn("s1")
	c.Scan()
	waitFor(t, "the login", func() bool { return r.info("s1").Connected })
	r.driver.CutBeforeLogin.Store(true)
	c.DropAndStayDown()
	time.Sleep(1500 * time.Millisecond)
	// The first drop was of a working connection: reconnect at once (open 2); its drop before the
	// login waits 0.5-1 s (open 3); that one's waits 1-2 s: at most 3 opens in 1.5 s.
	if got := r.driver.Opens(); got < 2 || got > 3 {
		t.Fatalf("%d opens 1.5 s into an outage cutting every login, want 2 or 3 (backoff, no tight loop)", got)
	}
	r.driver.CutBeforeLogin.Store(false)
	// The next attempt comes within 2 s (or 4 s if one more was cut meanwhile).
	waitFor(t, "the reconnect after the outage", func() bool { return r.info("s1").Connected })
	if info := r.info("s1"); info.Status != laravel.StatusConnected || !info.Connected {
		t.Fatalf("after the outage the session is %+v", info)
	}
}

// waitFor polls cond in real time for up to 8 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(8 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("%s did not happen within 8 s", what)
}

// The login watchdog's reconnect takes a connect slot like every other reconnect (issue 18: after
// a WhatsApp outage many sessions' watchdogs fire together; each dialled at once, bypassing
// RestoreConcurrency). Here the only slot is held by another session's handshake when s1's
// watchdog fires: s1's new connection waits for it instead of opening beside it.
func TestTheLoginWatchdogsReconnectWaitsForAConnectSlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, session.Config{RestoreConcurrency: 1})
		defer r.close()
		for _, id := range []string{"s1", "s2"} {
			r.start(id)
			r.driver.Conn(id).Scan()
			synctest.Wait()
		}
		r.driver.LoginUnanswered.Store(true)
		r.driver.Conn("s1").DropAndStayDown() // reconnects at once; the new connection never logs in
		synctest.Wait()
		if r.driver.Opens() != 3 {
			t.Fatalf("opens %d after s1's drop, want 3", r.driver.Opens())
		}
		gate := make(chan struct{})
		r.driver.ConnectGate = gate
		r.driver.Conn("s2").DropAndStayDown() // s2's reconnect holds the only slot, handshaking
		synctest.Wait()
		if r.driver.Opens() != 4 || r.driver.Connecting() != 1 {
			t.Fatalf("opens %d, connecting %d after s2's drop, want 4 and 1", r.driver.Opens(), r.driver.Connecting())
		}
		time.Sleep(20 * time.Second) // the default PairLoginTimeout: s1's watchdog fires
		synctest.Wait()
		if got := r.driver.Opens(); got != 4 {
			t.Fatalf("opens %d while s2's handshake held the only slot, want 4: s1's watchdog reconnected beside it", got)
		}
		r.driver.LoginUnanswered.Store(false)
		close(gate) // s2's handshake ends; s1 takes the slot
		synctest.Wait()
		if got := r.driver.MaxConnecting(); got != 1 {
			t.Fatalf("at most %d connects were in flight at once, want 1 (RestoreConcurrency)", got)
		}
		for _, id := range []string{"s1", "s2"} {
			if info := r.info(id); info.Status != laravel.StatusConnected || !info.Connected {
				t.Fatalf("%s at the end: %+v", id, info)
			}
		}
	})
}
