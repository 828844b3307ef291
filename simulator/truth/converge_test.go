package truth

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"wagate/simulator/metrics"
)

// Converge waits for Laravel to catch up with the gateway, and re-reads the gateway for the
// sessions that disagree, so a state reached after the first read is judged, not an old one.
func TestConvergeWaitsForLaravelAndFollowsTheGateway(t *testing.T) {
	l := NewLedger(metrics.NewRegistry(nil), QRTiming{}, nil)
	for _, id := range []string{"steady", "late", "reconnecting"} {
		l.Started(id, id, at(0), nil)
		l.Caused(id, connected, at(1))
	}
	// The gateway: "reconnecting" is disconnected at the first read, connected from the second.
	var reads [][]string
	readGateway := func(_ context.Context, ids []string) map[string]State {
		reads = append(reads, slices.Clone(ids))
		out := map[string]State{}
		for _, id := range ids {
			switch {
			case id == "reconnecting" && len(reads) == 1:
				out[id] = State{disconnected, 5}
			case id == "reconnecting":
				out[id] = State{connected, 6}
			default:
				out[id] = State{connected, 3}
			}
		}
		return out
	}
	// Laravel: "late" arrives at the third poll, "reconnecting" goes through the gateway's states.
	polls := 0
	pollLaravel := func(context.Context) error {
		polls++
		l.ObserveLaravel("steady", Observation{Status: connected, StatusVersion: 3, At: at(polls)})
		if polls >= 3 {
			l.ObserveLaravel("late", Observation{Status: connected, StatusVersion: 3, At: at(polls)})
		}
		v, s := int64(5), disconnected
		if polls >= 4 {
			v, s = 6, connected
		}
		l.ObserveLaravel("reconnecting", Observation{Status: s, StatusVersion: v, At: at(polls)})
		return nil
	}
	gateway, err := l.Converge(context.Background(), readGateway, pollLaravel, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if polls != 4 {
		t.Errorf("Laravel polled %d times, want 4 (until every session caught up)", polls)
	}
	if !slices.Equal(reads[0], []string{"steady", "late", "reconnecting"}) || slices.Contains(reads[1], "steady") {
		t.Errorf("gateway reads %v: all first, then only the sessions Laravel disagreed with", reads)
	}
	if truth := l.Finish(gateway, at(100)); truth.Lost != 0 || truth.GatewayMismatches != 0 || truth.Stale != 0 {
		t.Errorf("truth after converging = %+v", truth)
	}
}

// A gateway read just before it moved on (a QR flow expiring) is read again when Laravel already
// shows the newer state, instead of calling Laravel's newer version a refusal.
func TestConvergeRereadsAGatewayThatMovedOnAfterItWasRead(t *testing.T) {
	l := NewLedger(metrics.NewRegistry(nil), QRTiming{}, nil)
	l.Started("s", "s", at(0), nil)
	reads := 0
	readGateway := func(context.Context, []string) map[string]State {
		reads++
		if reads == 1 {
			return map[string]State{"s": {pending, 7}} // its last QR code
		}
		return map[string]State{"s": {expired, 8}}
	}
	pollLaravel := func(context.Context) error {
		l.ObserveLaravel("s", Observation{Status: expired, StatusVersion: 8, QRVersion: 7, At: at(10)})
		return nil
	}
	gateway, err := l.Converge(context.Background(), readGateway, pollLaravel, time.Minute)
	if err != nil || reads != 2 {
		t.Fatalf("err %v, gateway read %d times, want twice", err, reads)
	}
	if truth := l.Finish(gateway, at(100)); truth.Lost != 0 || truth.GatewayMismatches != 0 {
		t.Errorf("truth = %+v", truth)
	}
}

// Converge is bounded: a final state that never arrives is judged lost after the limit, and a
// Laravel that cannot be read is reported.
func TestConvergeGivesUpAtItsLimit(t *testing.T) {
	l := NewLedger(metrics.NewRegistry(nil), QRTiming{}, nil)
	l.Started("s", "s", at(0), nil)
	l.Caused("s", loggedOut, at(1))
	readGateway := func(context.Context, []string) map[string]State { return map[string]State{"s": {loggedOut, 4}} }
	down := errors.New("connection refused")
	gateway, err := l.Converge(context.Background(), readGateway, func(context.Context) error { return down }, 10*time.Millisecond)
	if !errors.Is(err, down) {
		t.Errorf("err = %v, want Laravel's", err)
	}
	if truth := l.Finish(gateway, at(100)); truth.Lost != 1 {
		t.Errorf("truth = %+v, want the logout lost", truth)
	}
}

// Without the gateway's view there is nothing to wait for: one poll of Laravel, then the verdict.
func TestConvergeWithoutTheGatewayPollsOnce(t *testing.T) {
	l := NewLedger(metrics.NewRegistry(nil), QRTiming{}, nil)
	l.Started("s", "s", at(0), nil)
	polls := 0
	gateway, err := l.Converge(context.Background(), func(context.Context, []string) map[string]State { return nil },
		func(context.Context) error { polls++; return nil }, time.Minute)
	if gateway != nil || err != nil || polls != 1 {
		t.Errorf("gateway %v err %v polls %d, want nil, nil, 1", gateway, err, polls)
	}
}

// At its limit Converge judges a gateway that Laravel is ahead of only on a read made after
// Laravel showed the newer version: the gateway was read pending v3, then the paired device logged
// in and Laravel received connected v4 before the limit. Read again, the gateway shows connected
// (agrees), still pending v3 (its versions went back: lost), or cannot answer (judged without it:
// Laravel shows what the simulation caused).
func TestConvergeAtItsLimitJudgesTheGatewayOnAReadAfterLaravels(t *testing.T) {
	for _, tc := range []struct {
		name     string
		reread   map[string]State
		wantLost int64
	}{
		{"the gateway logged in after it was read", map[string]State{"s": {connected, 4}}, 0},
		{"the gateway's versions went back", map[string]State{"s": {pending, 3}}, 1},
		{"the gateway cannot answer the re-read", map[string]State{}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := NewLedger(metrics.NewRegistry(nil), QRTiming{}, nil)
			l.Started("s", "s", at(0), nil)
			l.Caused("s", connected, at(1))
			var reads [][]string
			readGateway := func(_ context.Context, ids []string) map[string]State {
				reads = append(reads, slices.Clone(ids))
				if len(reads) == 1 {
					return map[string]State{"s": {pending, 3}}
				}
				return tc.reread
			}
			pollLaravel := func(context.Context) error {
				l.ObserveLaravel("s", Observation{Status: connected, StatusVersion: 4, QRVersion: 3, At: at(5)})
				return nil
			}
			gateway, err := l.Converge(context.Background(), readGateway, pollLaravel, 0)
			if err != nil || len(reads) != 2 || !slices.Equal(reads[1], []string{"s"}) {
				t.Fatalf("err %v, gateway reads %v: want the outdated session read again after Laravel's poll", err, reads)
			}
			if truth := l.Finish(gateway, at(100)); truth.Lost != tc.wantLost || truth.GatewayMismatches != 0 {
				t.Errorf("truth = %+v, want %d lost", truth, tc.wantLost)
			}
		})
	}
}
