package processtest

import (
	"fmt"
	"testing"
	"time"

	"wagate/gateway/cluster"
	"wagate/internal/proctest"
	"wagate/simulator/fakewa"
)

// drainAnswer is POST /cluster/drain's answer.
type drainAnswer struct {
	Drained            bool   `json:"drained"`
	Member             string `json:"member"`
	ShardsReleased     int    `json:"shards_released"`
	SessionsHandedOver int    `json:"sessions_handed_over"`
	TookMillis         int64  `json:"took_ms"`
}

// checkLoggedInOnce checks that each of ids logged in to WhatsApp exactly once after seq and saw
// no replaced stream, and that none of others logged in at all.
func (w *world) checkLoggedInOnce(what string, ids, others []string, since uint64) {
	w.t.Helper()
	conns := w.waEvents(since, fakewa.EventConnected)
	replaced := w.waEvents(since, fakewa.EventReplaced)
	for _, id := range ids {
		jid := w.jids[id].String()
		if c := len(conns[jid]); c != 1 {
			w.t.Errorf("%s: %s logged in %d times, want exactly once", what, id, c)
		}
		if c := len(replaced[jid]); c > 0 {
			w.t.Errorf("%s: %s saw %d replaced streams", what, id, c)
		}
	}
	for _, id := range others {
		if c := len(conns[w.jids[id].String()]); c > 0 {
			w.t.Errorf("%s: %s, not held by the stopped replica, logged in %d times", what, id, c)
		}
	}
}

// without is ids without the ones in drop.
func without(ids, drop []string) []string {
	set := map[string]bool{}
	for _, id := range drop {
		set[id] = true
	}
	var out []string
	for _, id := range ids {
		if !set[id] {
			out = append(out, id)
		}
	}
	return out
}

// A scale-down with a drain: every replica runs with the default restart grace (30 s, for rolling
// updates). One replica is drained (POST /cluster/drain) and then stopped with SIGTERM, as an
// operator removing it does: every session it held is connected on the other two within the
// takeover bound, each logging in exactly once, and nobody waits for the grace (the takeover
// bound is shorter than the grace). The same SIGTERM without a drain does wait: a second
// replica stopped so leaves its shards held by nobody, waiting for it, and its sessions
// unconnected, until the grace ends; then the last replica takes them, each logging in once.
func TestADrainedReplicasSessionsConnectOnTheOthersAtOnceAndAStopWithoutADrainWaitsTheGrace(t *testing.T) {
	w := newWorld(t)
	grace := cluster.DefaultRestartGrace
	w.startReady("gw-a", "gw-b", "gw-c")
	n := sessionCount(t)
	ids := w.pair(n)
	w.checkEverySessionConnectedOnce(ids)
	holders, _, err := w.holders()
	if err != nil {
		t.Fatal(err)
	}
	drained, moved := mostLoaded(byHolder(holders, ids))
	if len(moved) == 0 || len(moved) == n {
		t.Fatalf("%s holds %d of %d sessions: the shards are not spread", drained, len(moved), n)
	}
	if budget := takeoverBudget(n); budget >= grace {
		t.Fatalf("the takeover budget %v is not shorter than the grace %v: the test could not tell a drain from a wait", budget, grace)
	}

	// Drain, then stop: the scale-down procedure of docs/cluster.md.
	seq := w.lastSeq()
	began := time.Now()
	var ans drainAnswer
	if code, body := w.call(w.replicas[drained].url(), "POST", "/cluster/drain", nil, &ans); code != 200 {
		t.Fatalf("POST /cluster/drain on %s: %d %s", drained, code, body)
	}
	if !ans.Drained || ans.SessionsHandedOver != len(moved) || cluster.NameOf(ans.Member) != drained {
		t.Errorf("drain answered %+v, want drained, %s, %d sessions handed over", ans, drained, len(moved))
	}
	w.replicas[drained].proc.Stop(t, 30*time.Second)
	w.waitMovedAndConnected(fmt.Sprintf("the %d sessions of the drained %s connected on the others", len(moved), drained),
		moved, drained, seq, takeoverBudget(n))
	tookDrained := time.Since(began)
	t.Logf("drain: %s answered after %d ms (%d shards, %d sessions); its sessions were connected on the others %v after the drain began (budget %v, grace %v)",
		drained, ans.TookMillis, ans.ShardsReleased, ans.SessionsHandedOver, tookDrained.Round(100*time.Millisecond), takeoverBudget(n), grace)
	w.checkLoggedInOnce("after the drain", moved, without(ids, moved), seq)
	if _, table, err := w.holders(); err != nil {
		t.Fatal(err)
	} else {
		for _, s := range table {
			if s.WaitingFor != "" {
				t.Errorf("shard %d waits for %s after a drain", s.Shard, s.WaitingFor)
			}
		}
	}
	w.checkLaravelMatchesHolders(ids)

	// The same stop without a drain: the shards wait for the replica's return.
	holders, _, err = w.holders()
	if err != nil {
		t.Fatal(err)
	}
	groups := byHolder(holders, ids)
	delete(groups, drained)
	stopped, waiting := mostLoaded(groups)
	if len(waiting) == 0 || len(waiting) == n {
		t.Fatalf("%s holds %d of %d sessions", stopped, len(waiting), n)
	}
	seq = w.lastSeq()
	began = time.Now()
	w.replicas[stopped].proc.Stop(t, 30*time.Second)
	time.Sleep(5 * time.Second) // five rounds of the last replica
	if hs, table, err := w.holders(); err != nil {
		t.Fatal(err)
	} else {
		waitingFor := map[int]string{}
		for _, s := range table {
			waitingFor[s.Shard] = s.WaitingFor
		}
		for _, id := range waiting {
			k := cluster.Shard(id, shards)
			if hs[k] != "" || waitingFor[k] != stopped {
				t.Errorf("%s's shard %d 5 s after a SIGTERM without a drain: held by %q, waiting for %q, want held by nobody, waiting for %s",
					id, k, hs[k], waitingFor[k], stopped)
			}
		}
	}
	if c := w.waEvents(seq, fakewa.EventConnected); len(c) > 0 {
		t.Errorf("%d devices logged in within 5 s of a SIGTERM without a drain, want none before the grace ends", len(c))
	}
	w.waitMovedAndConnected(fmt.Sprintf("the %d sessions of %s, stopped without a drain, connected on the last replica after the grace", len(waiting), stopped),
		waiting, stopped, seq, grace+takeoverBudget(n))
	tookStopped := time.Since(began)
	t.Logf("no drain: %s's %d sessions were connected on the last replica %v after its SIGTERM (grace %v); drained: %v",
		stopped, len(waiting), tookStopped.Round(100*time.Millisecond), grace, tookDrained.Round(100*time.Millisecond))
	if tookStopped < grace {
		t.Errorf("without a drain the sessions were back after %v, before the grace %v ended", tookStopped, grace)
	}
	w.checkLoggedInOnce("after the stop without a drain", waiting, without(ids, waiting), seq)
	w.checkLaravelMatchesHolders(ids)
	w.checkNoSecretsLogged()
	proctest.Eventually(t, "the last replica holding every shard", 10*time.Second, func() (bool, string) {
		hs, _, err := w.holders()
		if err != nil {
			return false, err.Error()
		}
		for k, h := range hs {
			if h == "" || h == drained || h == stopped {
				return false, fmt.Sprintf("shard %d held by %q", k, h)
			}
		}
		return true, ""
	})
}
