package truth

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"wagate/gateway/laravel"
	"wagate/simulator/metrics"
	"wagate/simulator/threshold"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// A step is one thing that happens to a session during a run, as the ledger learns it.
type step func(l *Ledger)

func started(ms int) step { return func(l *Ledger) { l.Started("s", "1555", at(ms), nil) } }
func caused(s laravel.Status, ms int) step {
	return func(l *Ledger) { l.Caused("s", s, at(ms)) }
}
func reconnects() step { return func(l *Ledger) { l.Expect("s", connected) } }

// inFlight is an action whose cause is recorded at ms and whose outcome is known later: the
// first step records the cause, the second undoes it (the action failed: a logout request that
// never reached the gateway).
func inFlight(s laravel.Status, ms int) (record, fails step) {
	var undo func()
	return func(l *Ledger) { undo = l.Caused("s", s, at(ms)) }, func(*Ledger) { undo() }
}

// shows is a poll of Laravel finding the session at status s, set by version v.
func shows(s laravel.Status, v int64, ms int) step {
	return func(l *Ledger) { l.ObserveLaravel("s", Observation{Status: s, StatusVersion: v, At: at(ms)}) }
}

// showsQR is a poll of Laravel finding status s at version v and QR code qr at version qv.
func showsQR(s laravel.Status, v int64, qr string, qv int64, ms int) step {
	return func(l *Ledger) {
		l.ObserveLaravel("s", Observation{Status: s, StatusVersion: v, QR: qr, QRVersion: qv, At: at(ms)})
	}
}

// drop is a drop (whatsmeow reconnects by itself) as the simulation reports it.
func drop(ms int) []step { return []step{caused(disconnected, ms), reconnects()} }

func steps(parts ...any) []step {
	var out []step
	for _, p := range parts {
		switch p := p.(type) {
		case step:
			out = append(out, p)
		case []step:
			out = append(out, p...)
		}
	}
	return out
}

// The ground truth's rules as sequences one session goes through: what the simulation caused,
// what Laravel was seen showing (with the versions the gateway gave), and the gateway's final
// state (no gateway: it could not say). Each names the verdict it must reach.
func TestTheLedgerJudgesSessionHistories(t *testing.T) {
	const epoch1, epoch2 = 1 * 1_000_000, 2 * 1_000_000
	logoutSent, logoutUnreached := inFlight(loggedOut, 100)
	for _, tc := range []struct {
		name    string
		history []step
		gateway *State
		want    Verdict
	}{
		// The false alarm of issue 19: a drop makes the ledger expect connected again, Laravel is
		// still (or again) seen with the pre-drop connected, then the drop's disconnected arrives
		// with a higher version, then the reconnect. Nothing is wrong.
		{"a drop's disconnected after the pre-drop connected is not stale",
			steps(started(0), shows(pending, 1, 5), caused(connected, 10), drop(100), shows(connected, 3, 120),
				shows(disconnected, 4, 150), shows(connected, 5, 900)),
			&State{connected, 5}, Agrees},
		{"a drop Laravel never saw (coalesced into the reconnect) is not lost",
			steps(started(0), caused(connected, 10), shows(connected, 3, 20), drop(100), shows(connected, 5, 900)),
			&State{connected, 5}, Agrees},
		{"heavy churn: drops, a replaced stream, re-pairing, a logout, Laravel seeing every other state",
			steps(started(0), caused(connected, 10), shows(connected, 3, 20),
				drop(100), shows(disconnected, 4, 130), drop(400), shows(connected, 7, 700), // 5, 6 coalesced
				caused(disconnected, 800), shows(disconnected, 8, 820), // replaced: stays down
				caused(connected, 900), shows(connected, 11, 950), // re-paired: pending 9, QR 10 unseen
				drop(1000), caused(loggedOut, 1010), shows(loggedOut, 14, 1100)),
			&State{loggedOut, 14}, Agrees},
		{"duplicate delivery: the same event seen applied twice is neither lost nor stale",
			steps(started(0), caused(connected, 10), shows(connected, 3, 20), shows(connected, 3, 40), shows(connected, 3, 60)),
			&State{connected, 3}, Agrees},
		{"a late state Laravel ignored: nothing changes, nothing is wrong",
			steps(started(0), caused(connected, 10), drop(100), shows(connected, 5, 900), shows(connected, 5, 950)),
			&State{connected, 5}, Agrees},
		{"a late state Laravel applied: an older version over a newer one is a stale overwrite",
			steps(started(0), caused(connected, 10), drop(100), shows(connected, 5, 900), shows(disconnected, 4, 950), shows(connected, 6, 990)),
			&State{connected, 6}, StaleOverwrite},
		{"the same version with another state is a stale overwrite",
			steps(started(0), caused(connected, 10), shows(connected, 3, 20), caused(loggedOut, 30), shows(loggedOut, 4, 40), shows(connected, 4, 50)),
			&State{loggedOut, 4}, StaleOverwrite},
		{"lost: the logout never reached Laravel",
			steps(started(0), caused(connected, 10), shows(connected, 3, 20), caused(loggedOut, 30)),
			&State{loggedOut, 4}, Lost},
		{"lost: the reconnect after the last drop never reached Laravel (a transient state at the end)",
			steps(started(0), caused(connected, 10), shows(connected, 3, 20), drop(100), shows(disconnected, 4, 150)),
			&State{connected, 5}, Lost},
		{"gateway restart: the version epoch jumps and the re-emitted states apply",
			steps(started(0), caused(connected, 10), shows(connected, epoch1+3, 20),
				shows(disconnected, epoch2+1, 500), shows(connected, epoch2+2, 900), // SIGKILL, restart, reconnect
				drop(1000), shows(disconnected, epoch2+3, 1020), shows(connected, epoch2+4, 1500)),
			&State{connected, epoch2 + 4}, Agrees},
		{"Redis lost: every state is re-emitted with new versions and applies over the old",
			steps(started(0), caused(connected, 10), shows(connected, epoch1+3, 20), shows(connected, 1_765_000_000*1_000_000+1, 700)),
			&State{connected, 1_765_000_000*1_000_000 + 1}, Agrees},
		{"Redis lost with versions gone back: Laravel refuses the logout, which is lost",
			steps(started(0), caused(connected, 10), shows(connected, epoch1+3, 20), caused(loggedOut, 500)),
			&State{loggedOut, 2}, Lost},
		{"a pending session ends on a QR code Laravel holds",
			steps(started(0), showsQR(pending, 1, "ref-a,n,i,a", 2, 30), showsQR(pending, 1, "ref-b,n,i,a", 3, 20_030)),
			&State{pending, 3}, Agrees},
		{"a paired device that never logged in: Laravel is faithful, the gateway failed",
			steps(started(0), showsQR(pending, 1, "ref-a,n,i,a", 2, 30), caused(connected, 40)),
			&State{pending, 2}, GatewayMismatch},
		{"without the gateway's view, the simulation's last cause stands in",
			steps(started(0), caused(connected, 10), shows(connected, 3, 20), drop(100), shows(disconnected, 4, 150), shows(connected, 5, 900)),
			nil, Agrees},
		{"without the gateway's view, a missed logout is lost",
			steps(started(0), caused(connected, 10), shows(connected, 3, 20), caused(loggedOut, 30)),
			nil, Lost},
		{"legacy delivery (no versions): the final states agree",
			steps(started(0), caused(connected, 10), shows(connected, 0, 20), drop(100), shows(disconnected, 0, 150), shows(connected, 0, 900)),
			&State{connected, 5}, Agrees},
		// Chaos seed 4 schedule 9: the user's logout request waits in the paused gateway's socket
		// while a replaced stream hits the device; the gateway, resumed, sees the replace and
		// then applies the logout, which forgets the device: logged out is the final state,
		// although the logout was recorded before the replace.
		{"a logout in flight across a replaced stream ends logged out",
			steps(started(0), caused(connected, 10), shows(connected, 3, 20),
				caused(loggedOut, 100), caused(disconnected, 300), // logout sent; replace while paused
				shows(disconnected, 4, 5600), shows(loggedOut, 5, 5620)), // resumed: replace, then logout
			&State{loggedOut, 5}, Agrees},
		{"a logout in flight that never reached the gateway leaves the replace's disconnected",
			steps(started(0), caused(connected, 10), shows(connected, 3, 20),
				logoutSent, caused(disconnected, 300), logoutUnreached, shows(disconnected, 4, 5600)),
			&State{disconnected, 4}, Agrees},
		{"... and a gateway that logged it out anyway did what nobody asked",
			steps(started(0), caused(connected, 10), shows(connected, 3, 20),
				logoutSent, caused(disconnected, 300), logoutUnreached, shows(loggedOut, 5, 5600)),
			&State{loggedOut, 5}, GatewayMismatch},
		{"a drop after a logout does not bring the device back",
			steps(started(0), caused(connected, 10), shows(connected, 3, 20), caused(loggedOut, 100), drop(300),
				shows(loggedOut, 4, 400)),
			&State{loggedOut, 4}, Agrees},
		{"a new pairing after a logout does",
			steps(started(0), caused(connected, 10), shows(connected, 3, 20), caused(loggedOut, 100),
				shows(loggedOut, 4, 400), started(500), caused(connected, 900), shows(connected, 7, 950)),
			&State{connected, 7}, Agrees},
		{"a refused logout request is forgotten",
			steps(started(0), caused(connected, 10), shows(connected, 3, 20),
				step(func(l *Ledger) { l.Caused("s", loggedOut, at(30))() })),
			nil, Agrees},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := NewLedger(metrics.NewRegistry(nil), QRTiming{}, nil)
			for _, s := range tc.history {
				s(l)
			}
			var gateway map[string]State
			if tc.gateway != nil {
				gateway = map[string]State{"s": *tc.gateway}
			}
			truth := l.Finish(gateway, at(2000))
			got := map[Verdict]int64{Lost: truth.Lost, StaleOverwrite: truth.Stale, GatewayMismatch: truth.GatewayMismatches}
			for v, n := range got {
				if want := int64(0); v == tc.want {
					want = 1
					if n != want {
						t.Errorf("%s = %d, want 1 (%v)", v, n, truth.Mismatches)
					}
				} else if n != want {
					t.Errorf("%s = %d, want 0 (%v)", v, n, truth.Mismatches)
				}
			}
		})
	}
}

// A verdict that cries wolf is useless: a run where the gateway emits versioned states under heavy
// churn and restarts, and a version-guarded Laravel applies them out of order, twice, late and
// coalesced while polls catch only some, must give 0 lost / 0 stale / 0 mismatched once every final
// event arrived; and withholding one session's final event, or letting one stale write through,
// must be caught, exactly once.
func TestAFaithfulRunUnderChurnGivesZeroAndOneFaultIsCaught(t *testing.T) {
	for _, fault := range []string{"", "lose a final event", "apply a stale write"} {
		t.Run("fault="+fault, func(t *testing.T) {
			for seed := range uint64(20) {
				truth := simulateRun(t, seed, fault)
				want := Truth{Sessions: simSessions}
				switch fault {
				case "lose a final event":
					want.Lost = 1
				case "apply a stale write":
					want.Stale = 1
				}
				if truth.Lost != want.Lost || truth.Stale != want.Stale || truth.GatewayMismatches != 0 || truth.Sessions != want.Sessions {
					t.Fatalf("seed %d: lost %d stale %d mismatched %d of %d, want %d/%d/0 of %d: %v", seed,
						truth.Lost, truth.Stale, truth.GatewayMismatches, truth.Sessions, want.Lost, want.Stale, want.Sessions, truth.Mismatches)
				}
			}
		})
	}
}

const simSessions = 60

// simEvent is one status event the simulated gateway emitted.
type simEvent struct {
	id      string
	status  laravel.Status
	version int64
}

// simulateRun plays a small world: each session pairs, then goes through random drops (with
// reconnects), replaced streams, re-pairings, gateway restarts (new epoch) and logouts; the
// ledger is told what the simulation caused; Laravel applies each event only when its version is
// newer (the contract's guard), receiving them shuffled within a window, some twice; polls of
// Laravel happen at random moments. fault breaks exactly one session.
func simulateRun(t *testing.T, seed uint64, fault string) Truth {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 19))
	l := NewLedger(metrics.NewRegistry(nil), QRTiming{}, nil)
	type gw struct {
		epoch, seq int64
		status     laravel.Status
	}
	gws := map[string]*gw{}
	var emitted []simEvent
	emit := func(id string, s laravel.Status) {
		g := gws[id]
		g.seq++
		g.status = s
		emitted = append(emitted, simEvent{id, s, g.epoch*1_000_000 + g.seq})
	}
	ids := make([]string, simSessions)
	for i := range ids {
		id := fmt.Sprintf("u-%d", i)
		ids[i] = id
		gws[id] = &gw{epoch: 1}
		l.Started(id, id, at(0), nil)
		emit(id, pending)
		l.Caused(id, connected, at(1))
		emit(id, connected)
	}
	for round := range 30 {
		for _, id := range ids {
			g := gws[id]
			if g.status == loggedOut {
				continue
			}
			switch r := rng.IntN(100); {
			case r < 30: // a drop: whatsmeow reconnects
				if g.status == connected {
					l.Caused(id, disconnected, at(round))
					l.Expect(id, connected)
					emit(id, disconnected)
					emit(id, connected)
				}
			case r < 35: // a replaced stream: stays down until re-paired
				if g.status == connected {
					l.Caused(id, disconnected, at(round))
					emit(id, disconnected)
				}
			case r < 45: // re-pairing a session that is down
				if g.status == disconnected {
					emit(id, pending)
					l.Caused(id, connected, at(round))
					emit(id, connected)
				}
			case r < 47: // a logout
				l.Caused(id, loggedOut, at(round))
				emit(id, loggedOut)
			case r < 50: // the gateway restarts: new epoch, the state is re-emitted
				g.epoch++
				g.seq = 0
				emit(id, g.status)
			}
		}
	}
	// Delivery: shuffled within a window of 8 (batches, retries), 10% delivered twice; the victim's
	// final event is withheld, or one stale write is let through.
	victim := ids[rng.IntN(len(ids))]
	finalOf := map[string]simEvent{}
	for _, e := range emitted {
		finalOf[e.id] = e
	}
	var deliveries []simEvent
	for _, e := range emitted {
		if fault == "lose a final event" && e == finalOf[victim] {
			continue
		}
		deliveries = append(deliveries, e)
		if rng.IntN(10) == 0 {
			deliveries = append(deliveries, e)
		}
	}
	for i := 0; i+1 < len(deliveries); i++ {
		j := i + rng.IntN(min(8, len(deliveries)-i))
		deliveries[i], deliveries[j] = deliveries[j], deliveries[i]
	}
	// The deliveries a shuffle put last must not be what makes the final state: deliver every
	// session's final event (unless withheld) again at the end, as a retry would.
	for _, id := range ids {
		if fault == "lose a final event" && id == victim {
			continue
		}
		deliveries = append(deliveries, finalOf[id])
	}
	type row struct {
		status  laravel.Status
		version int64
	}
	stored := map[string]row{}
	staleLetThrough := false
	poll := func(ms int) {
		for _, id := range ids {
			if r, ok := stored[id]; ok {
				l.ObserveLaravel(id, Observation{Status: r.status, StatusVersion: r.version, At: at(ms)})
			}
		}
	}
	for i, e := range deliveries {
		cur, ok := stored[e.id]
		switch {
		case !ok || e.version > cur.version:
			stored[e.id] = row{e.status, e.version}
		case fault == "apply a stale write" && !staleLetThrough && e.id == victim && e.version < cur.version && e.status != cur.status:
			// Laravel is seen with the newer version, then the guard fails once and it is seen
			// with the older one.
			poll(i)
			stored[e.id] = row{e.status, e.version}
			staleLetThrough = true
			poll(i)
		}
		if rng.IntN(5) == 0 {
			poll(i)
		}
	}
	if fault == "apply a stale write" && !staleLetThrough {
		// No late write of the victim with another state arrived: force one.
		cur := stored[victim]
		poll(len(deliveries))
		stored[victim] = row{other(cur.status), cur.version - 1}
		poll(len(deliveries))
		stored[victim] = cur
	}
	poll(len(deliveries) + 1)
	gateway := map[string]State{}
	for id, g := range gws {
		gateway[id] = State{Status: g.status, Version: finalOf[id].version}
	}
	return l.Finish(gateway, at(1_000_000))
}

func other(s laravel.Status) laravel.Status {
	if s == connected {
		return disconnected
	}
	return connected
}

// A start request that got no answer (the gateway was killed mid-request) may have created the
// session or not: it is judged only if the gateway or Laravel knows it.
func TestAnUnansweredStartIsJudgedOnlyWhereTheSessionExists(t *testing.T) {
	for _, tc := range []struct {
		name     string
		laravel  *Observation
		gateway  map[string]State
		sessions int64
		lost     int64
	}{
		{"known nowhere: it never existed", nil, map[string]State{}, 0, 0},
		{"known nowhere, the gateway could not say", nil, nil, 0, 0},
		{"the gateway created it and Laravel has its state", &Observation{Status: expired, StatusVersion: 8, QRVersion: 7}, map[string]State{"s": {expired, 8}}, 1, 0},
		{"the gateway created it and its state never reached Laravel", nil, map[string]State{"s": {expired, 8}}, 1, 1},
		{"Laravel has it though the gateway forgot it", &Observation{Status: pending, StatusVersion: 1}, map[string]State{}, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := NewLedger(metrics.NewRegistry(nil), QRTiming{}, nil)
			l.Started("s", "1", at(0), nil)
			l.Unanswered("s")
			if tc.laravel != nil {
				l.ObserveLaravel("s", *tc.laravel)
			}
			truth := l.Finish(tc.gateway, at(100))
			if truth.Sessions != tc.sessions || truth.Lost != tc.lost {
				t.Errorf("sessions %d lost %d, want %d and %d: %v", truth.Sessions, truth.Lost, tc.sessions, tc.lost, truth.Mismatches)
			}
		})
	}
}

func TestDeliveryDelayIsMeasuredFromTheCause(t *testing.T) {
	reg := metrics.NewRegistry(nil)
	l := NewLedger(reg, QRTiming{First: 60 * time.Second, Next: 20 * time.Second, Codes: 6}, nil)
	l.Started("s1", "15550001", at(0), nil)
	l.ObserveLaravel("s1", Observation{Status: pending, StatusVersion: 1, At: at(40)})
	l.Caused("s1", connected, at(1000))
	l.ObserveLaravel("s1", Observation{Status: connected, StatusVersion: 3, At: at(1250)})
	high, _ := reg.Summarize(threshold.Key{Metric: "event_delivery_delay", Tags: map[string]string{"priority": "high"}}, time.Minute)
	normal, _ := reg.Summarize(threshold.Key{Metric: "event_delivery_delay", Tags: map[string]string{"priority": "normal"}}, time.Minute)
	if high.Histogram.Count() != 1 || high.Values["max"] < 249.9 || high.Values["max"] > 250.2 {
		t.Errorf("high delay = %v", high.Values)
	}
	if normal.Histogram.Count() != 1 || normal.Values["max"] < 39.9 || normal.Values["max"] > 40.1 {
		t.Errorf("normal delay = %v", normal.Values)
	}
	truth := l.Finish(map[string]State{"s1": {connected, 3}}, at(5000))
	if truth.Lost != 0 || truth.Stale != 0 || truth.Sessions != 1 {
		t.Errorf("truth = %+v", truth)
	}
	if reg.Total("ground_truth_sessions", nil) != 1 || reg.Total("lost_updates", nil) != 0 {
		t.Error("counters not recorded")
	}
}

func TestQRVisibilityAndExpiredUnseen(t *testing.T) {
	reg := metrics.NewRegistry(nil)
	refs := map[string]RefIssue{"r0": {at(0), 0}, "r1": {at(0), 1}, "r2": {at(0), 2}, "r3": {at(0), 3}}
	q := QRTiming{First: 60 * time.Second, Next: 20 * time.Second, Codes: 4}
	l := NewLedger(reg, q, func(ref string) (RefIssue, bool) { r, ok := refs[ref]; return r, ok })
	l.Started("s", "1", at(0), nil)
	l.ObserveLaravel("s", Observation{Status: pending, StatusVersion: 1, QR: "r0,noise,id,adv", QRVersion: 2, At: at(300)})    // shown at 0: 300 ms late
	l.ObserveLaravel("s", Observation{Status: pending, StatusVersion: 1, QR: "r2,noise,id,adv", QRVersion: 4, At: at(80_500)}) // r1 (60-80 s) never reached Laravel
	l.Caused("s", connected, at(90_000))
	l.Paired("s", "jid", at(90_000))
	l.ObserveLaravel("s", Observation{Status: connected, StatusVersion: 5, QR: "r2,noise,id,adv", QRVersion: 4, At: at(90_100)})
	vis, _ := reg.Summarize(threshold.Key{Metric: "qr_visibility_delay"}, time.Minute)
	if vis.Histogram.Count() != 2 || vis.Values["min"] < 299 || vis.Values["min"] > 301 || vis.Values["max"] < 499 || vis.Values["max"] > 501 {
		t.Errorf("qr visibility = %v", vis.Values)
	}
	truth := l.Finish(map[string]State{"s": {connected, 5}}, at(200_000))
	if truth.ExpiredUnseen != 1 {
		t.Errorf("expired unseen = %d, want 1 (r1)", truth.ExpiredUnseen)
	}
}

func TestAForgottenSessionIsNotComparedAtTheEnd(t *testing.T) {
	l := NewLedger(metrics.NewRegistry(nil), QRTiming{First: time.Minute, Next: 20 * time.Second, Codes: 6}, nil)
	l.Started("kept", "1", time.Unix(0, 0), nil)
	l.Started("never-reached", "2", time.Unix(0, 0), nil)
	l.ObserveLaravel("kept", Observation{Status: pending, StatusVersion: 1, At: time.Unix(1, 0)})
	l.Forget("never-reached")
	l.Forget("unknown") // no-op
	truth := l.Finish(nil, time.Unix(10, 0))
	if truth.Sessions != 1 || truth.Lost != 0 {
		t.Fatalf("sessions %d lost %d, want 1 and 0", truth.Sessions, truth.Lost)
	}
	if ids := l.IDs(); !slices.Equal(ids, []string{"kept"}) {
		t.Fatalf("IDs = %v", ids)
	}
}

// LoggedOut names the devices whose session the simulation expects logged out: a logout kept
// (answered, or its answer lost), not one refused or never delivered (undone), and not one
// followed by a new pairing.
func TestLoggedOutNamesTheDevicesOfSessionsExpectedLoggedOut(t *testing.T) {
	at := time.Unix(1000, 0)
	cases := []struct {
		name    string
		causes  []laravel.Status
		undoAll bool // the logout request was refused or never reached the gateway
		want    bool
	}{
		{"connected", []laravel.Status{laravel.StatusConnected}, false, false},
		{"logged out", []laravel.Status{laravel.StatusConnected, laravel.StatusLoggedOut}, false, true},
		{"logged out, then a drop", []laravel.Status{laravel.StatusConnected, laravel.StatusLoggedOut, laravel.StatusDisconnected}, false, true},
		{"logout refused", []laravel.Status{laravel.StatusConnected, laravel.StatusLoggedOut}, true, false},
		{"logged out, then paired again", []laravel.Status{laravel.StatusConnected, laravel.StatusLoggedOut, laravel.StatusConnected}, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := NewLedger(metrics.NewRegistry(nil), QRTiming{}, nil)
			l.Started("s", "+1", at, nil)
			l.Paired("s", "d@s.whatsapp.net", at)
			l.Started("unpaired", "+2", at, nil)
			l.Caused("unpaired", laravel.StatusLoggedOut, at)
			var undo func()
			for _, st := range c.causes {
				u := l.Caused("s", st, at)
				if st == laravel.StatusLoggedOut {
					undo = u
				}
			}
			if c.undoAll {
				undo()
			}
			got := l.LoggedOut()
			if got["d@s.whatsapp.net"] != c.want || len(got) > 1 {
				t.Errorf("LoggedOut() = %v, want d@s.whatsapp.net: %v", got, c.want)
			}
		})
	}
}
