package session_test

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"

	"wagate/gateway/laravel"
	"wagate/gateway/session"
)

// When WhatsApp drops every connection at once, the sessions reconnect RestoreConcurrency at a
// time, as a restore does: the others wait for a slot instead of all handshaking at once (at
// 10,000 sessions the simultaneous handshakes timed out and were retried in step).
func TestConnectionsDroppedTogetherReconnectAtMostRestoreConcurrencyAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, limit = 12, 3
		r := newRig(t, session.Config{RestoreConcurrency: limit})
		defer r.close()
		for i := range n {
			id := fmt.Sprintf("s%02d", i)
			r.start(id)
			r.driver.Conn(id).Scan()
		}
		synctest.Wait()
		gate := make(chan struct{})
		r.driver.ConnectGate = gate
		for i := range n {
			r.driver.Conn(fmt.Sprintf("s%02d", i)).DropAndStayDown()
		}
		synctest.Wait()
		if got := r.driver.Connecting(); got != limit {
			t.Fatalf("%d reconnects in flight right after %d drops, want %d (RestoreConcurrency)", got, n, limit)
		}
		for range n {
			gate <- struct{}{} // one handshake ends; a waiting session takes its slot
			synctest.Wait()
		}
		if got := r.driver.MaxConnecting(); got != limit {
			t.Fatalf("at most %d reconnects were in flight at once, want %d", got, limit)
		}
		for i := range n {
			id := fmt.Sprintf("s%02d", i)
			if info := r.info(id); info.Status != laravel.StatusConnected || !info.Connected {
				t.Fatalf("%s after the reconnects: %+v", id, info)
			}
		}
	})
}

// A restore after a start and the reconnects after drops share the same slots.
func TestARestoreAndReconnectsAfterDropsShareTheSlots(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, limit = 8, 2
		r := newRig(t, session.Config{})
		for i := range n {
			id := fmt.Sprintf("s%02d", i)
			r.start(id)
			r.driver.Conn(id).Scan()
		}
		synctest.Wait()
		r.close()
		gate := make(chan struct{})
		r.driver.ConnectGate = gate
		r.m = r.manager(session.Config{RestoreConcurrency: limit})
		defer r.close()
		if err := r.m.Restore(context.Background()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		gate <- struct{}{} // s00 (or another) connects
		synctest.Wait()
		// One restored session drops right away while the restore still waits for slots.
		var dropped string
		for i := range n {
			id := fmt.Sprintf("s%02d", i)
			if c := r.driver.Conn(id); c != nil && c.LoggedIn() {
				dropped = id
				c.DropAndStayDown()
				break
			}
		}
		if dropped == "" {
			t.Fatal("no session logged in after one handshake ended")
		}
		synctest.Wait()
		if got := r.driver.Connecting(); got != limit {
			t.Fatalf("%d connects in flight, want %d", got, limit)
		}
		close(gate)
		synctest.Wait()
		if got := r.driver.MaxConnecting(); got != limit {
			t.Fatalf("at most %d connects were in flight at once, want %d", got, limit)
		}
		if _, live := r.m.Counts(); live != n {
			t.Fatalf("%d of %d sessions live at the end", live, n)
		}
		if info := r.info(dropped); !info.Connected {
			t.Fatalf("the dropped session %s did not reconnect: %+v", dropped, info)
		}
	})
}
