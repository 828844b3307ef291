package processtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"wagate/fakelaravel"
	"wagate/gateway/cluster"
	"wagate/gateway/laravel"
	"wagate/internal/proctest"
	"wagate/simulator/fakewa"
)

// takeoverBudget is issue 16's bound on a takeover after a replica died: every session it held
// connected on the survivors within 15 s + 2 s per 1000 sessions.
func takeoverBudget(sessions int) time.Duration {
	return 15*time.Second + time.Duration(sessions)*2*time.Second/1000
}

// mostLoaded is the replica holding the most of ids, and those ids.
func mostLoaded(groups map[string][]string) (string, []string) {
	best := ""
	for name, ids := range groups {
		if best == "" || len(ids) > len(groups[best]) || (len(ids) == len(groups[best]) && name < best) {
			best = name
		}
	}
	return best, groups[best]
}

// checkEverySessionConnectedOnce checks fakewa saw each paired session log in at least once so
// far (the JIDs the tests compare are the ones fakewa reports).
func (w *world) checkEverySessionConnectedOnce(ids []string) {
	w.t.Helper()
	conns := w.waEvents(0, fakewa.EventConnected)
	for _, id := range ids {
		if len(conns[w.jids[id].String()]) == 0 {
			w.t.Fatalf("fakewa never saw %s (%s) connect; its events name devices differently", id, w.jids[id])
		}
	}
}

// waitMovedAndConnected waits until every one of ids is held by a replica other than from, has
// logged in to WhatsApp again after seq, and Laravel shows it connected at its shard's new epoch.
func (w *world) waitMovedAndConnected(what string, ids []string, from string, since uint64, timeout time.Duration) {
	w.t.Helper()
	proctest.Eventually(w.t, what, timeout, func() (bool, string) {
		hs, table, err := w.holders()
		if err != nil {
			return false, err.Error()
		}
		conns := w.waEvents(since, fakewa.EventConnected)
		ls := w.laravelSessions()
		for _, id := range ids {
			h := holderOf(hs, id)
			switch {
			case h == "" || h == from:
				return false, fmt.Sprintf("%s held by %q", id, h)
			case len(conns[w.jids[id].String()]) == 0:
				return false, fmt.Sprintf("%s (held by %s) not logged in to WhatsApp again", id, h)
			case ls[id].EstadoQR != laravel.StatusConnected || cluster.EpochOf(ls[id].StatusVersion) != epochOf(table, id):
				return false, fmt.Sprintf("%s: Laravel %s v%d, shard epoch %d", id, ls[id].EstadoQR, ls[id].StatusVersion, epochOf(table, id))
			}
		}
		return true, ""
	})
}

// A replica is SIGKILLed: every session it held is connected on the survivors within 15 s + 2 s
// per 1000 sessions, each logging in once; the survivors' own sessions do not reconnect; Laravel
// ends with every session connected at its shard's current epoch.
func TestASIGKILLedReplicasSessionsConnectOnTheSurvivorsInTime(t *testing.T) {
	w := newWorld(t)
	w.startReady("gw-a", "gw-b", "gw-c")
	n := sessionCount(t)
	ids := w.pair(n)
	w.checkEverySessionConnectedOnce(ids)
	holders, _, err := w.holders()
	if err != nil {
		t.Fatal(err)
	}
	victim, moved := mostLoaded(byHolder(holders, ids))
	if len(moved) == 0 || len(moved) == n {
		t.Fatalf("the victim %s holds %d of %d sessions: the shards are not spread", victim, len(moved), n)
	}

	seq := w.lastSeq()
	killed := time.Now()
	w.replicas[victim].proc.Kill()
	w.waitMovedAndConnected(fmt.Sprintf("the %d sessions of the SIGKILLed %s connected on the survivors", len(moved), victim),
		moved, victim, seq, takeoverBudget(n))
	t.Logf("takeover: %d sessions of %s (of %d) connected on the survivors %v after its SIGKILL (budget %v, lease %v)",
		len(moved), victim, n, time.Since(killed).Round(100*time.Millisecond), takeoverBudget(n), leaseTTL)

	conns := w.waEvents(seq, fakewa.EventConnected)
	movedSet := map[string]bool{}
	for _, id := range moved {
		movedSet[id] = true
		if c := len(conns[w.jids[id].String()]); c != 1 {
			t.Errorf("%s logged in %d times after the SIGKILL, want once", id, c)
		}
	}
	for _, id := range ids {
		if !movedSet[id] && len(conns[w.jids[id].String()]) > 0 {
			t.Errorf("%s, held by survivor %s, reconnected", id, holderOf(holders, id))
		}
	}
	w.checkLaravelMatchesHolders(ids)
	if older := w.checkReadsAgree(ids); older > 0 {
		t.Errorf("%d status reads (of %d) answered an older version than Laravel's: stale after the takeover", older, len(ids)*len(w.live()))
	}
	w.checkNoSecretsLogged()
}

// A replica is SIGSTOPped for twice its lease: the survivors take its sessions over while it is
// paused; on SIGCONT it finds itself fenced (it reconnects nothing of its old claims), WhatsApp
// sees at most one replaced stream per session, and Laravel ends with the current holders'
// writes (the paused replica's late writes, if any, are counted stale).
func TestASIGSTOPpedReplicaFencesItselfOnResume(t *testing.T) {
	w := newWorld(t)
	w.startReady("gw-a", "gw-b", "gw-c")
	n := sessionCount(t)
	ids := w.pair(n)
	w.checkEverySessionConnectedOnce(ids)
	holders, _, err := w.holders()
	if err != nil {
		t.Fatal(err)
	}
	victim, paused := mostLoaded(byHolder(holders, ids))
	r := w.replicas[victim]
	v, err := w.view(r)
	if err != nil {
		t.Fatal(err)
	}
	oldID := v.Me.ID
	statsBefore, err := w.admin.GetStats(w.ctx)
	if err != nil {
		t.Fatal(err)
	}

	seq := w.lastSeq()
	stopped := time.Now()
	if err := syscall.Kill(r.proc.Pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			_ = syscall.Kill(r.proc.Pid(), syscall.SIGCONT)
		}
	}
	t.Cleanup(resume) // never leave a stopped process behind
	w.waitMovedAndConnected(fmt.Sprintf("the %d sessions of the paused %s connected on the others", len(paused), victim),
		paused, victim, seq, 2*leaseTTL)
	took := time.Since(stopped)
	_, table, err := w.holders()
	if err != nil {
		t.Fatal(err)
	}
	takeoverEpoch := map[string]int64{}
	for _, id := range paused {
		takeoverEpoch[id] = epochOf(table, id)
	}
	time.Sleep(time.Until(stopped.Add(2 * leaseTTL)))
	resume()
	pausedFor := time.Since(stopped)
	// For 5 s after the resume, Laravel never shows a paused session at an epoch older than its
	// takeover: whatever the resumed replica still sends is not applied.
	for watch := time.Now(); time.Since(watch) < 5*time.Second; time.Sleep(100 * time.Millisecond) {
		ls := w.laravelSessions()
		for _, id := range paused {
			if e := cluster.EpochOf(ls[id].StatusVersion); e < takeoverEpoch[id] {
				t.Fatalf("%s: Laravel applied a write of epoch %d after the takeover at epoch %d", id, e, takeoverEpoch[id])
			}
		}
	}
	t.Logf("takeover of %d sessions from the paused %s took %v; resumed after %v", len(paused), victim, took.Round(100*time.Millisecond), pausedFor.Round(100*time.Millisecond))

	// It fenced itself and rejoined as a new incarnation of the same name.
	proctest.Eventually(t, victim+" to find itself fenced on resume and rejoin", 15*time.Second, func() (bool, string) {
		log, err := os.ReadFile(filepath.Join(w.dir, victim+".log"))
		if err != nil {
			return false, err.Error()
		}
		v, err := w.view(r)
		if err != nil {
			return false, err.Error()
		}
		return strings.Contains(string(log), "fenced") && v.Me.ID != oldID && v.Me.Name == victim,
			fmt.Sprintf("incarnation %q (was %q), fencing logged: %v", v.Me.ID, oldID, strings.Contains(string(log), "fenced"))
	})
	w.waitBalanced(60 * time.Second)

	replaced := w.waEvents(seq, fakewa.EventReplaced)
	for _, id := range ids {
		if c := len(replaced[w.jids[id].String()]); c > 1 {
			t.Errorf("%s: %d replaced streams, want at most one (the paused replica's)", id, c)
		}
	}
	w.checkLaravelMatchesHolders(ids)
	statsAfter, err := w.admin.GetStats(w.ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Laravel counted %d stale status items during the pause and after (the paused replica's late writes among them)",
		statsAfter.Endpoints[fakelaravel.EndpointStatusBatch].Stale-statsBefore.Endpoints[fakelaravel.EndpointStatusBatch].Stale)
	w.checkNoSecretsLogged()
}

// Every replica in turn gets SIGTERM and is started again with the same gateway id (a rolling
// update, the way a StatefulSet or Compose does it): its shards wait for it (the restart grace)
// instead of moving to replicas that are about to be restarted too, nobody else claims them
// meanwhile, and the restarted replica claims them at a new epoch. So each session logs in to
// WhatsApp exactly once over the whole roll, on its own restarted replica, never through a
// replaced stream, and Laravel ends at the current epochs.
//
// It failed before the restart grace (docs/cluster.md, "Rolling updates"): the stopped replica's
// shards moved to the others at once and came back when it rejoined (rendezvous hashing by name),
// two logins per session.
func TestARollingSIGTERMReconnectsEachSessionOnce(t *testing.T) {
	w := newWorld(t)
	names := []string{"gw-a", "gw-b", "gw-c"}
	w.startReady(names...)
	n := sessionCount(t)
	ids := w.pair(n)
	w.checkEverySessionConnectedOnce(ids)
	start := w.lastSeq()
	for _, name := range names {
		w.restart(name, ids)
	}
	conns := w.waEvents(start, fakewa.EventConnected)
	replaced := w.waEvents(start, fakewa.EventReplaced)
	logins := map[int]int{}
	for _, id := range ids {
		logins[len(conns[w.jids[id].String()])]++
	}
	t.Logf("logins per session over the roll (logins: sessions): %v", logins)
	for _, id := range ids {
		jid := w.jids[id].String()
		if c := len(conns[jid]); c != 1 {
			t.Errorf("%s logged in %d times during the roll, want exactly once (on its restarted replica)", id, c)
		}
		if c := len(replaced[jid]); c > 0 {
			t.Errorf("%s: %d replaced streams during a rolling SIGTERM (a replica must disconnect before the next holder connects)", id, c)
		}
	}
	w.checkLaravelMatchesHolders(ids)
	w.checkNoSecretsLogged()
}

// restart stops replica name with SIGTERM and starts it again: for two rebalancing rounds while it
// is down, no other replica claims its shards (they wait for it); once it is back, every one of
// ids it held is held by it again, logged in to WhatsApp again and connected in Laravel at the
// shard's new epoch, and every shard is where it is assigned. It logs how long its sessions were
// without a connection.
func (w *world) restart(name string, ids []string) {
	w.t.Helper()
	holders, _, err := w.holders()
	if err != nil {
		w.t.Fatal(err)
	}
	mine := map[int]bool{}
	for k, h := range holders {
		if h == name {
			mine[k] = true
		}
	}
	held := byHolder(holders, ids)[name]
	seq := w.lastSeq()
	stopped := time.Now()
	w.replicas[name].proc.Stop(w.t, 30*time.Second)
	exited := time.Since(stopped)
	time.Sleep(2 * time.Second) // two rounds of the others
	if hs, _, err := w.holders(); err != nil {
		w.t.Fatal(err)
	} else {
		for k := range mine {
			if hs[k] != "" {
				w.t.Errorf("%s's shard %d was claimed by %s while %s was restarting", name, k, hs[k], name)
			}
		}
	}
	w.start(name)
	w.waitBackAndConnected(fmt.Sprintf("the %d sessions of %s connected on it again after its restart", len(held), name),
		held, name, seq, takeoverBudget(len(ids)))
	w.t.Logf("%s: SIGTERM, exited after %v, started again after 2 s more; its %d sessions connected on it again %v after the SIGTERM",
		name, exited.Round(100*time.Millisecond), len(held), time.Since(stopped).Round(100*time.Millisecond))
	w.waitBalanced(90 * time.Second)
}

// waitBackAndConnected waits until every one of ids is held by replica name, has logged in to
// WhatsApp again after seq, and Laravel shows it connected at its shard's current epoch.
func (w *world) waitBackAndConnected(what string, ids []string, name string, since uint64, timeout time.Duration) {
	w.t.Helper()
	proctest.Eventually(w.t, what, timeout, func() (bool, string) {
		hs, table, err := w.holders()
		if err != nil {
			return false, err.Error()
		}
		conns := w.waEvents(since, fakewa.EventConnected)
		ls := w.laravelSessions()
		for _, id := range ids {
			h := holderOf(hs, id)
			switch {
			case h != name:
				return false, fmt.Sprintf("%s held by %q", id, h)
			case len(conns[w.jids[id].String()]) == 0:
				return false, fmt.Sprintf("%s (held by %s) not logged in to WhatsApp again", id, h)
			case ls[id].EstadoQR != laravel.StatusConnected || cluster.EpochOf(ls[id].StatusVersion) != epochOf(table, id):
				return false, fmt.Sprintf("%s: Laravel %s v%d, shard epoch %d", id, ls[id].EstadoQR, ls[id].StatusVersion, epochOf(table, id))
			}
		}
		return true, ""
	})
}

// A fourth replica joins: about a quarter of the sessions move to it (rendezvous hashing moves
// only shards that now belong to the newcomer), at most 2 shards a second per replica; it leaves
// (SIGTERM, started without a restart grace: a replica scaled away): exactly those sessions go
// back to where they were, at once.
func TestScalingThreeToFourToThreeMovesAQuarter(t *testing.T) {
	w := newWorld(t)
	w.startReady("gw-a", "gw-b", "gw-c")
	n := sessionCount(t)
	ids := w.pair(n)
	before, _, err := w.holders()
	if err != nil {
		t.Fatal(err)
	}
	joined := time.Now()
	w.startWith("gw-d", "WAGATE_CLUSTER_RESTART_GRACE=0s")
	w.waitBalanced(90 * time.Second)
	t.Logf("3 -> 4: balanced %v after gw-d started", time.Since(joined).Round(100*time.Millisecond))
	during, _, err := w.holders()
	if err != nil {
		t.Fatal(err)
	}
	shardsMoved := 0
	for k := range before {
		if before[k] != during[k] {
			shardsMoved++
			if during[k] != "gw-d" {
				t.Errorf("shard %d moved from %s to %s, not to the newcomer", k, before[k], during[k])
			}
		}
	}
	if lo, hi := shards/8, shards*3/8; shardsMoved < lo || shardsMoved > hi {
		t.Errorf("%d of %d shards moved to the fourth replica, want about a quarter (%d..%d)", shardsMoved, shards, lo, hi)
	}
	movedSessions := byHolder(during, ids)["gw-d"]
	t.Logf("3 -> 4: %d of %d shards and %d of %d sessions moved to gw-d in %v (the holders hand over a bounded number of shards per second)",
		shardsMoved, shards, len(movedSessions), n, time.Since(joined).Round(100*time.Millisecond))
	w.checkLaravelMatchesHolders(ids)

	w.replicas["gw-d"].proc.Stop(t, 30*time.Second)
	w.waitBalanced(90 * time.Second)
	after, _, err := w.holders()
	if err != nil {
		t.Fatal(err)
	}
	for k := range before {
		if before[k] != after[k] {
			t.Errorf("shard %d: held by %s before gw-d joined, by %s after it left", k, before[k], after[k])
		}
	}
	w.checkLaravelMatchesHolders(ids)
	if os.Getenv("WAGATE_TEST_LOG") != "" {
		t.Logf("sessions that moved: %v", movedSessions)
	}
}
