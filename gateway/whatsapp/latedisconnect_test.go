package whatsapp

import (
	"log/slog"
	"testing"

	"go.mau.fi/whatsmeow/types/events"

	"wagate/simulator/fakewa"
)

// After a drop whatsmeow reconnects at once, and dispatches the drop's Disconnected on a
// goroutine of its own: on a busy machine the new socket's Connected can be handled first. The
// late Disconnected must not mark the connection down: the session checks LoggedIn right after
// it to restore connected, and a cleared flag left a connected session reporting disconnected
// until its next event. The test pairs a device on fakewa (real whatsmeow client, logged in),
// then hands the connection the Disconnected whatsmeow dispatches for the socket it replaced.
func TestADisconnectedHandledAfterTheReconnectLeavesTheConnectionLoggedIn(t *testing.T) {
	wa, _, drv := driverOnFakewa(t, slog.New(slog.DiscardHandler), fakewa.Config{})

	link := &linkEvents{}
	c := connect(t, drv, "s1", "", link.record)
	pairDevice(t, wa, c, link, "5511922220001")

	c.onEvent(&events.Disconnected{}) // the replaced socket's, dispatched late
	if told := link.disconnections(); told != 1 {
		t.Fatalf("the session was told of %d disconnections, want 1", told)
	}
	if !c.LoggedIn() {
		t.Fatal("a Disconnected of a socket already replaced marked the logged-in connection down")
	}
}
