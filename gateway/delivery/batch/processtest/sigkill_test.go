package processtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"

	"wagate/fakelaravel"
	"wagate/gateway/laravel"
	"wagate/internal/proctest"
)

// A gateway in batch mode with a real Redis keeps accepting session events while Laravel is down,
// is killed with SIGKILL, restarts; Laravel comes back; and Laravel ends with the gateway's last
// version of every session: nothing lost, nothing stale. QR codes and statuses reach Laravel only
// through the batch endpoints, and /metrics/batch and /metrics/cache answer.
func TestAGatewaySIGKILLedWhileLaravelIsDownLosesNothing(t *testing.T) {
	h := startHarness(t, "gw-kill",
		"WAGATE_BATCH_INTERVAL=300ms",
		"WAGATE_PRIORITY_INTERVAL=200ms",
		"WAGATE_QR_FIRST_TIMEOUT=3s",
		"WAGATE_QR_TIMEOUT=1s",
		"WAGATE_QR_CODES=3",
	)
	ctx, c := context.Background(), h.c

	laravelSessions := func() map[string]fakelaravel.SessionState {
		st, err := h.admin.GetState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]fakelaravel.SessionState{}
		for _, s := range st.Sessions {
			out[s.SessionID] = s
		}
		return out
	}

	// Two paired sessions, connected in Laravel.
	var jids []types.JID
	for i, id := range []string{"kill_a", "kill_b"} {
		jids = append(jids, h.pair(ctx, id, fmt.Sprintf("1555888000%d", i)))
		proctest.Eventually(t, id+" connected in Laravel", 30*time.Second, func() (bool, string) {
			s := laravelSessions()[id]
			return s.EstadoQR == laravel.StatusConnected, fmt.Sprintf("%+v", s)
		})
	}

	// Laravel goes down. The gateway keeps accepting events: new sessions rotate QR codes and
	// expire, a paired device drops and reconnects.
	h.laravel.Kill() // its SQLite file stays; it comes back on the same address
	for _, id := range []string{"kill_c", "kill_d", "kill_e"} {
		if code := c.call("POST", "/sessions", map[string]string{"session_id": id}, nil); code != 200 {
			t.Fatalf("start %s: %d", id, code)
		}
	}
	if err := h.phones.Drop(ctx, jids[0]); err != nil {
		t.Fatal(err)
	}
	proctest.Eventually(t, "the new sessions to expire and the outbox to hold their events", 60*time.Second, func() (bool, string) {
		ss := c.sessions()
		m := c.batchMetrics()
		done := m.Pending > 0
		for _, id := range []string{"kill_c", "kill_d", "kill_e"} {
			done = done && ss[id].Status == laravel.StatusExpired
		}
		return done, fmt.Sprintf("sessions %+v metrics %+v", ss, m)
	})
	before := c.sessions()

	// SIGKILL: no shutdown, no final flush.
	h.killGateway()
	gw := h.gw
	proctest.Eventually(t, "the restarted gateway to resync its restored sessions", 30*time.Second, func() (bool, string) {
		return strings.Contains(gw.Tail(), "resync=true"), gw.Tail()
	})
	h.startLaravel() // runs until the test ends (proctest kills it then)

	// Laravel ends with the gateway's last version of every session.
	proctest.Eventually(t, "Laravel to hold the gateway's last version of every session", 60*time.Second, func() (bool, string) {
		ss := c.sessions()
		ls := laravelSessions()
		m := c.batchMetrics()
		if m.Pending != 0 || m.InFlight != 0 {
			return false, fmt.Sprintf("metrics %+v", m)
		}
		for id, s := range ss {
			l, ok := ls[id]
			if !ok {
				return false, id + " missing in Laravel"
			}
			// After the SIGKILL the restarted gateway sends every restored status again (a
			// status stored just before the kill may never have reached the outbox), so Laravel
			// holds its version; and everything accepted before the kill arrived too.
			lv := max(l.StatusVersion, l.QRVersion)
			if l.EstadoQR != s.Status || (s.Version > 0 && lv != s.Version) || lv < before[id].Version {
				return false, fmt.Sprintf("%s: gateway %s v%d (v%d before the kill), Laravel %s status v%d qr v%d",
					id, s.Status, s.Version, before[id].Version, l.EstadoQR, l.StatusVersion, l.QRVersion)
			}
		}
		return len(ss) == 5, fmt.Sprintf("%d sessions", len(ss))
	})
	for _, id := range []string{"kill_c", "kill_d", "kill_e"} {
		if ls := laravelSessions()[id]; ls.EstadoQR != laravel.StatusExpired || ls.StatusVersion < before[id].Version {
			t.Errorf("%s in Laravel: %+v; want expired at version >= %d (accepted before the SIGKILL)", id, ls, before[id].Version)
		}
	}

	// Only the batch endpoints were used; the metrics endpoints answer.
	st, err := h.admin.GetStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, ep := range []string{fakelaravel.EndpointQR, fakelaravel.EndpointStatus} {
		if n := st.Endpoints[ep].Requests; n != 0 {
			t.Errorf("%d legacy %s requests in batch mode", n, ep)
		}
	}
	if st.Endpoints[fakelaravel.EndpointQRBatch].Requests == 0 || st.Endpoints[fakelaravel.EndpointStatusBatch].Requests == 0 {
		t.Errorf("batch endpoints unused: %+v", st.Endpoints)
	}
	var cm map[string]any
	if code := c.call("GET", "/metrics/cache", nil, &cm); code != 200 || cm["totalKeys"] == nil {
		t.Errorf("/metrics/cache: %d %v", code, cm)
	}
	if t.Failed() || os.Getenv("WAGATE_TEST_LOG") != "" {
		t.Logf("gateway-1 log:\n%s\ngateway-2 log:\n%s", proctest.Tail(filepath.Join(h.dir, "gateway-1.log")), gw.Tail())
	}
	if !strings.Contains(gw.Tail(), "recovered own pending outbox entries") {
		t.Error("the restarted gateway did not recover the entries the killed one had read")
	}
	if log := gw.Tail(); strings.Contains(log, apiToken) || strings.Contains(log, laravelToken) {
		t.Error("a secret appears in the gateway log")
	}
}
