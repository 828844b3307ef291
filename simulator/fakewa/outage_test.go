package fakewa

import (
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
)

// An outage of some devices cuts their connections like a network drop and cuts every login they
// try, unanswered, until it ends; other devices stay online; once it ends they log in again.
func TestADeviceOutageCutsItsConnectionAndItsLoginsUntilItEnds(t *testing.T) {
	srv := startServer(t, Config{})
	down, downJID := pairedClient(t, srv, "5511900000101")
	up, upJID := pairedClient(t, srv, "5511900000102")

	cut, err := srv.Unreachable([]types.JID{downJID}, time.Minute)
	if err != nil || cut != 1 {
		t.Fatalf("Unreachable = %d, %v; want 1 connection cut", cut, err)
	}
	if e := waitServerEvent(t, srv, EventDropped, downJID); e.Detail != "unreachable" {
		t.Fatalf("dropped event %+v, want detail unreachable", e)
	}
	waitFor[*events.Disconnected](down)
	// whatsmeow reconnects by itself; the login of its new connection is cut.
	waitServerEvent(t, srv, EventUnreachable, downJID)
	if info, _ := srv.Device(downJID); info.State != DeviceOffline {
		t.Fatalf("device under the outage is %s, want offline", info.State)
	}
	if info, _ := srv.Device(upJID); info.State != DeviceOnline {
		t.Fatalf("device outside the outage is %s, want online", info.State)
	}
	if up.saw(is[*events.Disconnected]) {
		t.Fatal("the device outside the outage was disconnected")
	}
	if srv.Stats().Refused == 0 {
		t.Fatal("Stats.Refused does not count the cut login")
	}

	srv.Reachable()
	waitFor[*events.Connected](down)
	if info, _ := srv.Device(downJID); info.State != DeviceOnline {
		t.Fatalf("device after the outage is %s, want online", info.State)
	}
}

// An outage of the whole server cuts every connection and refuses every new one before the
// handshake, so a client's dial fails, until it ends.
func TestAServerOutageCutsEveryConnectionAndRefusesDialsUntilItEnds(t *testing.T) {
	srv := startServer(t, Config{})
	tc, jid := pairedClient(t, srv, "5511900000103")
	tc.cli.EnableAutoReconnect = false

	if cut, err := srv.Unreachable(nil, time.Minute); err != nil || cut != 1 {
		t.Fatalf("Unreachable = %d, %v; want the one connection cut", cut, err)
	}
	waitFor[*events.Disconnected](tc)
	waitServerEvent(t, srv, EventDisconnected, jid)
	if err := tc.cli.Connect(); err == nil {
		t.Fatal("a dial during the outage succeeded")
	}
	if srv.Stats().Refused != 1 {
		t.Fatalf("refused %d dials, want 1", srv.Stats().Refused)
	}
	if _, err := srv.Unreachable(nil, 0); err == nil {
		t.Fatal("an outage of no duration was accepted")
	}

	srv.Reachable()
	if err := tc.cli.Connect(); err != nil {
		t.Fatalf("dial after the outage: %v", err)
	}
	waitFor[*events.Connected](tc)
}
