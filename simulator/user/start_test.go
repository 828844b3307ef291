package user

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"wagate/gateway/laravel"
	"wagate/simulator/executor"
	"wagate/simulator/metrics"
	"wagate/simulator/scenario"
	"wagate/simulator/truth"
)

// What a session whose start request failed means for the ground truth, by how it failed: refused
// (the gateway is down) it exists nowhere; unanswered (the gateway died mid-request) it exists
// only if the gateway or Laravel knows it at the end.
func TestAFailedStartTellsTheGroundTruthWhatMayExist(t *testing.T) {
	brokenAnswer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close() // the gateway dies mid-request: EOF
		}
	})
	for _, tc := range []struct {
		name         string
		gateway      func(t *testing.T) string // base URL
		gatewayKnows bool
		judged       int64
	}{
		{"refused: exists nowhere", closedPort, false, 0},
		{"unanswered, known nowhere: never existed", serve(brokenAnswer), false, 0},
		{"unanswered, but the gateway created it: judged", serve(brokenAnswer), true, 1},
		{"answered 503 every time (a cluster moving its shard): exists nowhere", serve(moving), false, 0},
		{"answered 502 (a replica's forward to the holder failed mid-answer), known nowhere: never existed", serve(holderFailed), false, 0},
		{"answered 502, but the holder created it: judged", serve(holderFailed), true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := metrics.NewRegistry(nil)
			ledger := truth.NewLedger(reg, truth.QRTiming{}, nil)
			sc := &Scenario{
				Env:       &Env{API: NewAPI(tc.gateway(t), "tok", &http.Client{Timeout: 5 * time.Second}, reg), Ledger: ledger, Reg: reg},
				Name:      "start",
				Behaviour: scenario.DefaultBehaviour(),
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second+startRetries*time.Second)
			defer cancel()
			err := sc.Iterate(ctx, executor.VU{ID: 1, Iteration: 1, Stopping: make(chan struct{})})
			if err == nil || errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Iterate = %v, want the start's failure", err)
			}
			gateway := map[string]truth.State{}
			if tc.gatewayKnows {
				gateway["start-i0-1"] = truth.State{Status: laravel.StatusExpired, Version: 9}
			}
			if got := ledger.Finish(gateway, time.Now()); got.Sessions != tc.judged {
				t.Errorf("sessions judged = %d, want %d (%v)", got.Sessions, tc.judged, got.Mismatches)
			}
		})
	}
}

// moving answers as a cluster replica does while the session's shard moves.
var moving = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Retry-After", "1")
	http.Error(w, `{"error":"session_moving"}`, http.StatusServiceUnavailable)
})

// holderFailed answers as a cluster replica does when the holder it forwarded the request to
// failed while answering (gateway/api's forward: holder_failed, the outcome unknown).
var holderFailed = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	http.Error(w, `{"error":"holder_failed"}`, http.StatusBadGateway)
})

func serve(h http.Handler) func(t *testing.T) string {
	return func(t *testing.T) string {
		hs := httptest.NewServer(h)
		t.Cleanup(hs.Close)
		return hs.URL
	}
}

func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// whatsappError answers as the gateway does when WhatsApp refused the start's connect (an
// outage: "connect: failed to dial ... got 503").
var whatsappError = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	http.Error(w, `{"error":"whatsapp_error"}`, http.StatusBadGateway)
})

var gatewayTimeout = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	http.Error(w, `{"error":"timeout"}`, http.StatusGatewayTimeout)
})

// A user whose start failed waits before its next iteration starts a new session, as a Laravel
// job retries a bit later: at most one start a second per user, however the start failed. Before,
// a start answered 502 (WhatsApp down) was followed at once by the next session's start: 1,324
// sessions from 20 users in a 2 s whatsapp-down outage.
func TestAUserWhoseStartFailedPausesBeforeStartingAgain(t *testing.T) {
	brokenAnswer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	for _, tc := range []struct {
		name    string
		gateway func(t *testing.T) string
	}{
		{"answered 502 whatsapp_error (WhatsApp down)", serve(whatsappError)},
		{"answered 502 holder_failed", serve(holderFailed)},
		{"answered 504", serve(gatewayTimeout)},
		{"refused (the gateway is down)", closedPort},
		{"unanswered (the gateway died mid-request)", serve(brokenAnswer)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := metrics.NewRegistry(nil)
			sc := &Scenario{
				Env: &Env{
					API:    NewAPI(tc.gateway(t), "tok", &http.Client{Timeout: 5 * time.Second}, reg),
					Ledger: truth.NewLedger(reg, truth.QRTiming{}, nil),
					Reg:    reg,
				},
				Name:      "start",
				Behaviour: scenario.DefaultBehaviour(),
			}
			// The executor's loop for one VU, bounded in count and time: 1.5 s holds two
			// paused iterations, never a third.
			window := 3 * startFailedPause / 2
			ctx, cancel := context.WithTimeout(context.Background(), window)
			defer cancel()
			iterations := 0
			for it := int64(1); it <= 1000 && ctx.Err() == nil; it++ {
				iterations++
				if err := sc.Iterate(ctx, executor.VU{ID: 1, Iteration: it, Stopping: make(chan struct{})}); err == nil {
					t.Fatalf("iteration %d = nil, want the start's failure", it)
				}
			}
			if iterations > 2 {
				t.Errorf("%d sessions started in %v by one user whose starts fail, want at most 2 (a pause of %v after each)", iterations, window, startFailedPause)
			}
		})
	}
}
