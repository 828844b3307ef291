package fakewa

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
)

// silenceChildEnv makes TestMain shorten whatsmeow's KeepAliveMaxFailTime (a package variable
// read by every client's keepalive loop, so set only in a process of its own, before any client
// starts): the silence tests re-run themselves in such a process.
const silenceChildEnv = "FAKEWA_TEST_KEEPALIVE_MAX_FAIL"

// silenceKeepAliveMaxFail is whatsmeow's KeepAliveMaxFailTime in the silence tests' process.
const silenceKeepAliveMaxFail = 1500 * time.Millisecond

// inOwnProcess re-runs the calling test in a child process with silenceChildEnv set and reports
// whether the caller is that child (true: go on with the test).
func inOwnProcess(t *testing.T) bool {
	t.Helper()
	if os.Getenv(silenceChildEnv) != "" {
		return true
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), silenceChildEnv+"="+silenceKeepAliveMaxFail.String())
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: "+t.Name())) {
		t.Fatalf("%s in its own process: %v\n%s", t.Name(), err, out)
	}
	return false
}

// A silent device (a frozen server, a half-open TCP path) keeps its connection open: the server
// closes nothing, and the client hears nothing, so a real whatsmeow client notices only through
// its keepalive. Once its keepalives went unanswered for longer than KeepAliveMaxFailTime it
// drops the connection itself and dials again; that login is held unanswered while the silence
// lasts and answered when it ends. A device outside the silence is not touched.
func TestASilentDeviceIsNoticedOnlyByItsKeepaliveAndReconnectsAfterTheSilence(t *testing.T) {
	if !inOwnProcess(t) {
		return
	}
	srv := startServer(t, Config{})
	silent, silentJID := pairedClient(t, srv, "5511900000201")
	other, otherJID := pairedClient(t, srv, "5511900000202")

	const length = 6 * time.Second
	began := time.Now()
	n, err := srv.Silence([]types.JID{silentJID}, length)
	if err != nil || n != 1 {
		t.Fatalf("Silence = %d, %v; want the device's one connection silent", n, err)
	}
	timeout := waitFor[*events.KeepAliveTimeout](silent)
	if timeout.ErrorCount < 1 {
		t.Fatalf("keepalive timeout %+v", timeout)
	}
	// The server closed nothing: the client ends the connection once its keepalives failed for
	// longer than KeepAliveMaxFailTime. Frozen, the server notices only when the silence ends:
	// reading the closed socket, or the client's new login replacing it, whichever comes first.
	ended := waitServerEvent(t, srv, EventDisconnected, silentJID)
	if gone := time.Since(began); gone < silenceKeepAliveMaxFail {
		t.Fatalf("the connection ended %s into the silence, before the keepalive limit (%s): %+v", gone, silenceKeepAliveMaxFail, ended)
	}
	if ended.Detail != "connection closed by client" && ended.Detail != "replaced by new login" {
		t.Fatalf("the connection ended with %q; want the client closing it", ended.Detail)
	}
	for _, e := range srv.EventsFor(silentJID) {
		if e.Kind == EventDropped {
			t.Fatalf("the server dropped the silent device's connection: %+v", e)
		}
	}
	// whatsmeow dials again at once (its own Disconnect: no Disconnected event); its login
	// waits for the silence's end.
	waitFor[*events.Connected](silent)
	if at := time.Since(began); at < length {
		t.Fatalf("the silent device logged in again %s into a %s silence", at, length)
	}
	if info, _ := srv.Device(silentJID); info.State != DeviceOnline || info.Logins != 2 {
		t.Fatalf("silent device after the silence: %s with %d logins; want online with 2", info.State, info.Logins)
	}

	if other.saw(is[*events.KeepAliveTimeout]) || other.saw(is[*events.Disconnected]) {
		t.Fatalf("the device outside the silence noticed it: %s", other.describe())
	}
	if info, _ := srv.Device(otherJID); info.State != DeviceOnline || info.Logins != 1 {
		t.Fatalf("device outside the silence: %s with %d logins; want online with 1", info.State, info.Logins)
	}
}

// A silence of the whole server, through the control API (POST /silence, /silence/end), holds
// every connection, new dials included (before their WebSocket upgrade), until it ends or is
// ended: what waited is answered then.
func TestAServerSilenceHoldsEveryConnectionAndNewDialsUntilItEnds(t *testing.T) {
	if !inOwnProcess(t) {
		return
	}
	srv := startServer(t, Config{})
	api := httptest.NewServer(srv.ControlHandler())
	defer api.Close()
	ctl := &ControlClient{BaseURL: api.URL, HTTP: api.Client()}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tc, jid := pairedClientWith(t, srv, "5511900000203", false)

	if n, err := ctl.Silence(ctx, nil, time.Minute); err != nil || n != 1 {
		t.Fatalf("POST /silence = %d, %v; want the one connection silent", n, err)
	}
	waitFor[*events.KeepAliveTimeout](tc)
	// A new client's dial is held: it neither connects nor fails while the silence lasts.
	late := newTestClient(t, srv.Addr())
	dialed := make(chan error, 1)
	go func() { dialed <- late.cli.Connect() }()
	select {
	case err := <-dialed:
		t.Fatalf("a dial into a silent server returned %v; want it held", err)
	case <-time.After(time.Second):
	}
	if info, _ := srv.Device(jid); info.State != DeviceOnline {
		t.Fatalf("the silent connection is %s; want it kept open", info.State)
	}

	if err := ctl.EndSilence(ctx); err != nil {
		t.Fatalf("POST /silence/end: %v", err)
	}
	waitFor[*events.KeepAliveRestored](tc)
	select {
	case err := <-dialed:
		if err != nil {
			t.Fatalf("the held dial failed after the silence: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the held dial was not answered after the silence ended")
	}
	waitFor[*events.QR](late)
	var ce *ControlError
	if _, err := ctl.Silence(ctx, nil, 0); !errors.As(err, &ce) || ce.Status != http.StatusBadRequest {
		t.Fatalf("a silence of no duration: %v, want 400", err)
	}
}
