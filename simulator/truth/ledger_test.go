package truth

import (
	"testing"
	"time"

	"wagate/gateway/laravel"
	"wagate/simulator/metrics"
	"wagate/simulator/threshold"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func TestDeliveryDelayIsMeasuredFromTheCause(t *testing.T) {
	reg := metrics.NewRegistry(nil)
	l := NewLedger(reg, QRTiming{First: 60 * time.Second, Next: 20 * time.Second, Codes: 6}, nil)
	l.Started("s1", "15550001", at(0), nil)
	l.ObserveLaravel("s1", laravel.StatusPending, 1, "", at(40))
	l.Caused("s1", laravel.StatusConnected, at(1000))
	l.ObserveLaravel("s1", laravel.StatusConnected, 3, "", at(1250))
	high, _ := reg.Summarize(threshold.Key{Metric: "event_delivery_delay", Tags: map[string]string{"priority": "high"}}, time.Minute)
	normal, _ := reg.Summarize(threshold.Key{Metric: "event_delivery_delay", Tags: map[string]string{"priority": "normal"}}, time.Minute)
	if high.Histogram.Count() != 1 || high.Values["max"] < 249.9 || high.Values["max"] > 250.2 {
		t.Errorf("high delay = %v", high.Values)
	}
	if normal.Histogram.Count() != 1 || normal.Values["max"] < 39.9 || normal.Values["max"] > 40.1 {
		t.Errorf("normal delay = %v", normal.Values)
	}
	truth := l.Finish(map[string]string{"s1": string(laravel.StatusConnected)}, nil, at(5000))
	if truth.Lost != 0 || truth.Stale != 0 || truth.Sessions != 1 {
		t.Errorf("truth = %+v", truth)
	}
}

func TestLostAndStaleAreTold(t *testing.T) {
	reg := metrics.NewRegistry(nil)
	l := NewLedger(reg, QRTiming{}, nil)
	// lost: the logout never reached Laravel
	l.Started("lost", "1", at(0), nil)
	l.Caused("lost", laravel.StatusConnected, at(10))
	l.ObserveLaravel("lost", laravel.StatusConnected, 2, "", at(20))
	l.Caused("lost", laravel.StatusLoggedOut, at(30))
	// stale: Laravel had logged_out, then an older "connected" overwrote it
	l.Started("stale", "2", at(0), nil)
	l.Caused("stale", laravel.StatusConnected, at(10))
	l.ObserveLaravel("stale", laravel.StatusConnected, 2, "", at(20))
	l.Caused("stale", laravel.StatusLoggedOut, at(30))
	l.ObserveLaravel("stale", laravel.StatusLoggedOut, 3, "", at(40))
	l.ObserveLaravel("stale", laravel.StatusConnected, 2, "", at(50))
	// never paired: pending or expired are both right
	l.Started("unpaired", "3", at(0), nil)
	// a drop: disconnected then connected again by itself
	l.Started("dropped", "4", at(0), nil)
	l.Caused("dropped", laravel.StatusConnected, at(10))
	l.Caused("dropped", laravel.StatusDisconnected, at(100))
	l.Expect("dropped", laravel.StatusConnected)
	l.ObserveLaravel("dropped", laravel.StatusDisconnected, 3, "", at(150))
	l.ObserveLaravel("dropped", laravel.StatusConnected, 4, "", at(900))
	truth := l.Finish(map[string]string{"lost": string(laravel.StatusConnected), "stale": string(laravel.StatusConnected), "unpaired": string(laravel.StatusExpired), "dropped": string(laravel.StatusConnected)}, nil, at(1000))
	if truth.Lost != 1 || truth.Stale != 1 || truth.Sessions != 4 {
		t.Errorf("truth = %+v", truth)
	}
	if reg.Total("lost_updates", nil) != 1 || reg.Total("stale_overwrites", nil) != 1 {
		t.Error("counters not recorded")
	}
}

func TestQRVisibilityAndExpiredUnseen(t *testing.T) {
	reg := metrics.NewRegistry(nil)
	refs := map[string]RefIssue{"r0": {at(0), 0}, "r1": {at(0), 1}, "r2": {at(0), 2}, "r3": {at(0), 3}}
	q := QRTiming{First: 60 * time.Second, Next: 20 * time.Second, Codes: 4}
	l := NewLedger(reg, q, func(ref string) (RefIssue, bool) { r, ok := refs[ref]; return r, ok })
	l.Started("s", "1", at(0), nil)
	l.ObserveLaravel("s", laravel.StatusPending, 1, "r0,noise,id,adv", at(300))    // shown at 0: 300 ms late
	l.ObserveLaravel("s", laravel.StatusPending, 1, "r2,noise,id,adv", at(80_500)) // r1 (60-80 s) never reached Laravel
	l.Caused("s", laravel.StatusConnected, at(90_000))
	l.Paired("s", "jid", at(90_000))
	l.ObserveLaravel("s", laravel.StatusConnected, 2, "r2,noise,id,adv", at(90_100))
	vis, _ := reg.Summarize(threshold.Key{Metric: "qr_visibility_delay"}, time.Minute)
	if vis.Histogram.Count() != 2 || vis.Values["min"] < 299 || vis.Values["min"] > 301 || vis.Values["max"] < 499 || vis.Values["max"] > 501 {
		t.Errorf("qr visibility = %v", vis.Values)
	}
	truth := l.Finish(map[string]string{"s": string(laravel.StatusConnected)}, nil, at(200_000))
	if truth.ExpiredUnseen != 1 {
		t.Errorf("expired unseen = %d, want 1 (r1)", truth.ExpiredUnseen)
	}
}

func TestTheGatewaysViewSeparatesLossFromGatewayFailure(t *testing.T) {
	reg := metrics.NewRegistry(nil)
	l := NewLedger(reg, QRTiming{}, nil)
	for _, id := range []string{"delivered", "lost", "never-logged-in"} {
		l.Started(id, "1", at(0), nil)
		l.Caused(id, laravel.StatusConnected, at(10))
	}
	laravelFinal := map[string]string{"delivered": string(laravel.StatusConnected), "lost": string(laravel.StatusPending), "never-logged-in": string(laravel.StatusPending)}
	gatewayFinal := map[string]string{"delivered": string(laravel.StatusConnected), "lost": string(laravel.StatusConnected), "never-logged-in": string(laravel.StatusPending)}
	truth := l.Finish(laravelFinal, gatewayFinal, at(100))
	if truth.Lost != 1 || truth.GatewayMismatches != 1 || truth.Stale != 0 {
		t.Errorf("truth = %+v", truth)
	}
}

func TestAFailedActionIsForgotten(t *testing.T) {
	reg := metrics.NewRegistry(nil)
	l := NewLedger(reg, QRTiming{}, nil)
	l.Started("s", "1", at(0), nil)
	l.Caused("s", laravel.StatusConnected, at(10))
	l.ObserveLaravel("s", laravel.StatusConnected, 2, "", at(20))
	undo := l.Caused("s", laravel.StatusLoggedOut, at(30)) // the logout request is refused
	undo()
	truth := l.Finish(map[string]string{"s": string(laravel.StatusConnected)}, nil, at(100))
	if truth.Lost != 0 || truth.Stale != 0 {
		t.Errorf("a refused logout counted: %+v", truth)
	}
}

func TestAForgottenSessionIsNotComparedAtTheEnd(t *testing.T) {
	l := NewLedger(metrics.NewRegistry(nil), QRTiming{First: time.Minute, Next: 20 * time.Second, Codes: 6}, nil)
	l.Started("kept", "1", time.Unix(0, 0), nil)
	l.Started("never-reached", "2", time.Unix(0, 0), nil)
	l.Forget("never-reached")
	l.Forget("unknown") // no-op
	truth := l.Finish(map[string]string{"kept": string(laravel.StatusPending)}, nil, time.Unix(10, 0))
	if truth.Sessions != 1 || truth.Lost != 0 {
		t.Fatalf("sessions %d lost %d, want 1 and 0", truth.Sessions, truth.Lost)
	}
	if ids := l.IDs(); len(ids) != 1 || ids[0] != "kept" {
		t.Fatalf("IDs = %v", ids)
	}
}
