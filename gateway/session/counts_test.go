package session_test

import (
	"context"
	"fmt"
	"maps"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"

	"wagate/gateway/laravel"
	"wagate/gateway/session"
	"wagate/gateway/session/sessiontest"
)

// snapshotCounts counts what the sessions' snapshots say: the statuses of every session the
// manager lists and those connected now (their connection logged in). Counts must agree with it
// whenever the sessions are at rest, without walking them itself.
func snapshotCounts(t *testing.T, m *session.Manager) (map[laravel.Status]int, int) {
	t.Helper()
	byStatus := map[laravel.Status]int{}
	for _, st := range laravel.Statuses {
		byStatus[st] = 0
	}
	live := 0
	after := ""
	for range 1000 { // bounded: 1000 pages of 100
		page, next, err := m.List(context.Background(), after, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range page {
			byStatus[in.Status]++
			if in.Connected {
				live++
			}
		}
		if next == "" {
			return byStatus, live
		}
		after = next
	}
	t.Fatal("more than 1000 pages of sessions")
	return nil, 0
}

// wantCounts checks Counts against the snapshots and against what the step expects.
func wantCounts(t *testing.T, m *session.Manager, step string, want map[laravel.Status]int, wantLive int) {
	t.Helper()
	synctest.Wait()
	got, live := m.Counts()
	snap, snapLive := snapshotCounts(t, m)
	full := map[laravel.Status]int{}
	for _, st := range laravel.Statuses {
		full[st] = want[st]
	}
	if !maps.Equal(got, snap) || live != snapLive {
		t.Fatalf("%s: Counts says %v, live %d; the sessions' snapshots say %v, live %d", step, got, live, snap, snapLive)
	}
	if !maps.Equal(got, full) || live != wantLive {
		t.Fatalf("%s: Counts says %v, live %d; want %v, live %d", step, got, live, full, wantLive)
	}
}

// Counts is kept on each transition, not counted per call: after every step of sessions' lives
// (pairing, login, drops with and without a reconnect, a takeover, an unlink, a stop, a logout, a
// restart, a handover) it says what the sessions' own snapshots say.
func TestCountsFollowEveryTransitionOfTheSessions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, session.Config{})
		defer r.close() // the manager in r.m when the test ends
		const (
			pending      = laravel.StatusPending
			connected    = laravel.StatusConnected
			disconnected = laravel.StatusDisconnected
			loggedOut    = laravel.StatusLoggedOut
			expired      = laravel.StatusExpired
		)
		wantCounts(t, r.m, "no session", nil, 0)
		for _, id := range []string{"a", "b", "c", "d", "e", "f"} {
			r.start(id)
		}
		wantCounts(t, r.m, "six started", map[laravel.Status]int{pending: 6}, 0)
		for _, id := range []string{"a", "b", "c", "d"} {
			r.driver.Conn(id).Scan()
		}
		wantCounts(t, r.m, "four scanned", map[laravel.Status]int{pending: 2, connected: 4}, 4)

		r.driver.Conn("a").DropAndStayDown() // reconnected on a new connection
		wantCounts(t, r.m, "a dropped and reconnected", map[laravel.Status]int{pending: 2, connected: 4}, 4)

		r.driver.CutBeforeLogin.Store(true)
		r.driver.Conn("b").DropAndStayDown() // its reconnects are cut before they log in
		wantCounts(t, r.m, "b dropped, WhatsApp cutting its logins", map[laravel.Status]int{pending: 2, connected: 3, disconnected: 1}, 3)
		r.driver.CutBeforeLogin.Store(false)

		r.driver.Conn("c").Replace()
		wantCounts(t, r.m, "c taken over by another client", map[laravel.Status]int{pending: 2, connected: 2, disconnected: 2}, 2)

		r.driver.Conn("d").UnlinkFromPhone()
		wantCounts(t, r.m, "d unlinked on the phone", map[laravel.Status]int{pending: 2, connected: 1, disconnected: 2, loggedOut: 1}, 1)

		if _, err := r.m.Stop(context.Background(), "e"); err != nil {
			t.Fatal(err)
		}
		wantCounts(t, r.m, "e stopped while pending", map[laravel.Status]int{pending: 1, connected: 1, disconnected: 2, loggedOut: 1, expired: 1}, 1)

		if _, err := r.m.Logout(context.Background(), "a"); err != nil {
			t.Fatal(err)
		}
		wantCounts(t, r.m, "a logged out", map[laravel.Status]int{pending: 1, disconnected: 2, loggedOut: 2, expired: 1}, 0)

		r.start("d")
		r.driver.Conn("d").Scan()
		wantCounts(t, r.m, "d paired again", map[laravel.Status]int{pending: 1, connected: 1, disconnected: 2, loggedOut: 1, expired: 1}, 1)

		r.close()
		// Closed: every connection closed, no status reported (the next start reports them).
		wantCounts(t, r.m, "closed", map[laravel.Status]int{pending: 1, connected: 1, disconnected: 2, loggedOut: 1, expired: 1}, 0)
		r.m = r.manager(session.Config{})
		if err := r.m.Restore(context.Background()); err != nil {
			t.Fatal(err)
		}
		// Restored: b reconnects (WhatsApp lets it log in now); c stays parked; f's QR flow
		// ended with the restart (expired).
		wantCounts(t, r.m, "after a restart", map[laravel.Status]int{connected: 2, disconnected: 1, loggedOut: 1, expired: 2}, 2)

		if _, err := r.m.Drop(context.Background(), func(id string) bool { return id == "b" || id == "e" }, false); err != nil {
			t.Fatal(err)
		}
		wantCounts(t, r.m, "b and e handed over", map[laravel.Status]int{connected: 1, disconnected: 1, loggedOut: 1, expired: 1}, 1)
	})
}

// Counts stays exact while many sessions change at once: sessions start, pair and drop
// concurrently with each other and with a scraper reading Counts (run it with -race).
func TestCountsStayExactUnderConcurrentTransitions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, session.Config{RestoreConcurrency: 8})
		defer r.close()
		const n = 200
		stop := make(chan struct{})
		scraped := make(chan int)
		go func() { // a scraper, reading while the sessions change
			reads := 0
			for {
				select {
				case <-stop:
					scraped <- reads
					return
				default:
				}
				if byStatus, live := r.m.Counts(); live > n || byStatus[laravel.StatusConnected] > n {
					t.Errorf("Counts out of range: %v, live %d", byStatus, live)
				}
				reads++
				runtime.Gosched()
			}
		}()
		all := func(ids []string, f func(id string)) {
			var wg sync.WaitGroup
			for _, id := range ids {
				wg.Go(func() { f(id) })
			}
			wg.Wait()
		}
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("s%03d", i)
		}
		all(ids, func(id string) {
			if _, err := r.m.Start(context.Background(), id); err != nil {
				t.Error(err)
			}
		})
		all(ids, func(id string) { r.driver.Conn(id).Scan() })
		all(ids[:n/2], func(id string) { r.driver.Conn(id).DropAndStayDown() }) // each reconnects
		close(stop)
		if reads := <-scraped; reads == 0 {
			t.Fatal("the scraper never read Counts")
		}
		wantCounts(t, r.m, "after concurrent starts, scans and drops", map[laravel.Status]int{laravel.StatusConnected: n}, n)
	})
}

// BenchmarkCounts is one scrape's count of the sessions (wagate_sessions, wagate_sessions_live)
// with n sessions connected on the in-process fake driver, whose LoggedIn is one atomic load (a
// whatsmeow client's takes two locks): each op is one Counts call.
func BenchmarkCounts(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			drv, store, sink := sessiontest.NewDriver(), sessiontest.NewStore(), &sessiontest.Sink{}
			m, err := session.New(context.Background(), session.Config{}, drv, store, sink)
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close(context.Background())
			for i := range n {
				id := fmt.Sprintf("s%05d", i)
				if _, err := m.Start(context.Background(), id); err != nil {
					b.Fatal(err)
				}
				drv.Conn(id).Scan()
			}
			if _, live := m.Counts(); live != n {
				b.Fatalf("%d of %d sessions live", live, n)
			}
			b.ReportAllocs()
			for b.Loop() {
				m.Counts()
			}
		})
	}
}
