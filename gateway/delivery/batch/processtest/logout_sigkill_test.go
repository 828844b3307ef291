package processtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"

	"wagate/gateway/laravel"
	"wagate/internal/proctest"
)

// A logout the API acknowledged (200) is final even when the gateway is SIGKILLed right after
// its answer: the restarted gateway reports the session logged_out, Laravel ends logged_out, and
// the device does not come back, whether WhatsApp unlinked it (reachable) or the gateway only
// forgot it locally (WhatsApp unreachable, so the phone still lists it and would let it in).
// Issue 19: the chaos campaign's truth invariant, as the product must keep it.
func TestALogoutTheAPIAcknowledgedSurvivesASIGKILLRightAfterItsAnswer(t *testing.T) {
	h := startHarness(t, "gw-logout-kill", "WAGATE_BATCH_INTERVAL=300ms", "WAGATE_PRIORITY_INTERVAL=200ms")
	ctx := context.Background()
	for i, unreachable := range []bool{false, true} {
		id := fmt.Sprintf("logout_kill_%d", i)
		jid := h.pair(ctx, id, fmt.Sprintf("1555777000%d", i))
		proctest.Eventually(t, id+" connected in the gateway", 30*time.Second, func() (bool, string) {
			s := h.c.sessions()[id]
			return s.Status == laravel.StatusConnected && s.Connected, fmt.Sprintf("%+v", s)
		})
		if unreachable {
			if _, err := h.phones.Unreachable(ctx, []types.JID{jid}, time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		if code := h.c.call("DELETE", "/sessions/"+id, nil, nil); code != 200 {
			t.Fatalf("%s: logout answered %d", id, code)
		}
		h.killGateway() // SIGKILL right after the 200, then started again
		if unreachable {
			if err := h.phones.Reachable(ctx); err != nil {
				t.Fatal(err)
			}
		}
		proctest.Eventually(t, id+" logged out in Laravel", 30*time.Second, func() (bool, string) {
			st, err := h.admin.GetState(ctx)
			if err != nil {
				return false, err.Error()
			}
			for _, s := range st.Sessions {
				if s.SessionID == id {
					return s.EstadoQR == laravel.StatusLoggedOut, string(s.EstadoQR)
				}
			}
			return false, "not in Laravel"
		})
		// The device had time to come back if the gateway kept it.
		time.Sleep(3 * time.Second)
		if s := h.c.sessions()[id]; s.Status != laravel.StatusLoggedOut || s.Connected {
			t.Errorf("%s (WhatsApp unreachable: %v): after the kill the gateway shows %+v, want logged_out", id, unreachable, s)
		}
	}
}
