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
