package fakewa

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"wagate/gateway/wadial"
)

// An outage's start is one instant (issue 19, chaos seed 1 schedule 19 at 2a41874): a connection
// still in its Noise handshake when it begins is not cut before the server's hello (whatsmeow
// would wait 20 s for that hello, which the campaign then counted against the gateway) but lets
// its handshake end and is cut there, unanswered, like a device outage's logins. Before, the
// outage cut it with the rest: the client's connect returned only at whatsmeow's 20 s timeout.
func TestAnOutageThatBeginsDuringAHandshakeCutsTheConnectionAtItsEndNotBeforeTheServerHello(t *testing.T) {
	skipUnderRaceAsItClosesSocketsMidHandshake(t) // cut right after its handshake
	srv := startServer(t, Config{})
	tc, jid := pairedClientWith(t, srv, "5511900000105", false)
	tc.cli.Disconnect()
	waitServerEvent(t, srv, EventDisconnected, jid)
	for deadline := time.Now().Add(10 * time.Second); srv.Stats().Connections != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still open after the client disconnected", srv.Stats().Connections)
		}
	}

	// The client's next dial is accepted and its hello held back: the server waits for it in
	// the handshake when the outage begins.
	hold := &holdFirstWrite{base: (wadial.Config{Addr: srv.Addr(), RootPubKey: testRootKey.Pub[:]}).HTTPClient().Transport,
		held: make(chan struct{}), release: make(chan struct{})}
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(hold.release) }) }
	t.Cleanup(release) // before the client's Disconnect, which waits for its connect
	tc.cli.SetWebsocketHTTPClient(&http.Client{Transport: hold})
	done := make(chan error, 1)
	go func() { done <- tc.cli.Connect() }()
	select {
	case <-hold.held:
	case <-time.After(10 * time.Second):
		t.Fatal("the client's dial was not accepted")
	}
	from := lastSeq(srv)
	if cut, err := srv.Unreachable(nil, time.Minute); err != nil || cut != 0 {
		t.Fatalf("Unreachable = %d, %v; want no connection cut at its start: the only one is in its handshake", cut, err)
	}
	release()
	released := time.Now()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("the client's connect still waits 15 s after its hello: its socket was closed before the server's hello")
	}
	if took := time.Since(released); took > 5*time.Second {
		t.Fatalf("the client's connect returned %v after its hello, want at once (the server hello answered)", took)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := srv.WaitEvent(ctx, func(e Event) bool {
		return e.Seq > from && e.Kind == EventUnreachable && strings.Contains(e.Detail, "end of its handshake")
	}); err != nil {
		t.Fatalf("the connection was not cut at the end of its handshake: %v", err)
	}
	events := srv.Events()
	if i := slices.IndexFunc(events, func(e Event) bool {
		return e.Seq > from && (e.Kind == EventConnected || e.Kind == EventHandshakeCut)
	}); i >= 0 {
		t.Fatalf("during the outage: %+v", events[i])
	}
	if info, _ := srv.Device(jid); info.State != DeviceOffline {
		t.Fatalf("device during the outage is %s, want offline", info.State)
	}
}

// A handshake cut closes each connection that sends its hello, accepted, before the server's
// hello, for as long as asked; then handshakes are answered again. The control API starts one
// as the Go API does and refuses a length that is not positive.
func TestCutHandshakesClosesConnectionsBeforeTheServerHelloForItsLength(t *testing.T) {
	srv := startServer(t, Config{})
	if err := srv.CutHandshakes(0); err == nil {
		t.Fatal("a handshake cut of no length was accepted")
	}
	api := httptest.NewServer(srv.ControlHandler())
	defer api.Close()
	ctl := &ControlClient{BaseURL: api.URL, HTTP: api.Client()}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var ce *ControlError
	if err := ctl.CutHandshakes(ctx, -time.Second); !errors.As(err, &ce) || ce.Status != http.StatusBadRequest {
		t.Fatalf("POST /handshakes/cut of a negative length: %v, want 400", err)
	}
	if err := ctl.CutHandshakes(ctx, time.Minute); err != nil {
		t.Fatalf("POST /handshakes/cut: %v", err)
	}

	ws := rawDial(t, srv.Addr()) // accepted
	defer ws.CloseNow()
	if err := ws.Write(ctx, websocket.MessageBinary, withHeader(frame(clientHello()))); err != nil {
		t.Fatal(err)
	}
	readCtx, stop := context.WithTimeout(ctx, 5*time.Second)
	typ, msg, err := ws.Read(readCtx)
	timedOut := readCtx.Err() != nil
	stop()
	if err == nil || timedOut {
		t.Fatalf("during the cut the server answered the hello (%v, %d bytes) or kept the socket open (%v)", typ, len(msg), err)
	}
	waitEventKind(t, srv, EventHandshakeCut)

	if err := srv.CutHandshakes(10 * time.Millisecond); err != nil { // the cut ends now
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	ws2 := rawDial(t, srv.Addr())
	defer ws2.CloseNow()
	if err := ws2.Write(ctx, websocket.MessageBinary, withHeader(frame(clientHello()))); err != nil {
		t.Fatal(err)
	}
	if typ, _, err := ws2.Read(ctx); err != nil || typ != websocket.MessageBinary {
		t.Fatalf("after the cut the server did not answer the hello: %v, %v", typ, err)
	}
}

// holdFirstWrite makes its base's WebSocket dials and holds the first write on the upgraded
// socket (the client's hello) until release is closed; held is closed when it is held.
type holdFirstWrite struct {
	base          http.RoundTripper
	held, release chan struct{}
	once          sync.Once
}

func (h *holdFirstWrite) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := h.base.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		return resp, err
	}
	resp.Body = &heldSocket{ReadWriteCloser: resp.Body.(io.ReadWriteCloser), h: h}
	return resp, nil
}

type heldSocket struct {
	io.ReadWriteCloser
	h *holdFirstWrite
}

func (s *heldSocket) Write(p []byte) (int, error) {
	s.h.once.Do(func() {
		close(s.h.held)
		<-s.h.release
	})
	return s.ReadWriteCloser.Write(p)
}

// lastSeq is the sequence number of the server's latest event.
func lastSeq(srv *Server) uint64 {
	var seq uint64
	for _, e := range srv.Events() {
		seq = max(seq, e.Seq)
	}
	return seq
}

// waitEventKind waits for a server event of kind.
func waitEventKind(t *testing.T, srv *Server, kind EventKind) Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	e, err := srv.WaitEvent(ctx, func(e Event) bool { return e.Kind == kind })
	if err != nil {
		t.Fatalf("server event %s: %v", kind, err)
	}
	return e
}
