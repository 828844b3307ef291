package fakewa

import (
	"bytes"
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/protobuf/proto"

	"go.mau.fi/whatsmeow/proto/waWa6"
	"go.mau.fi/whatsmeow/socket"
	"go.mau.fi/whatsmeow/types/events"
	"go.mau.fi/whatsmeow/util/keys"
)

// rawDial opens a bare WebSocket to the server, as a hostile or broken client would.
func rawDial(t *testing.T, addr string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws/chat", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return ws
}

// closedByServer reports whether the server closes ws within the timeout.
func closedByServer(ws *websocket.Conn, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		if _, _, err := ws.Read(ctx); err != nil {
			return ctx.Err() == nil
		}
	}
}

func frame(data []byte) []byte {
	f, _ := encodeFrame(data)
	return f
}

func withHeader(data []byte) []byte {
	return append(append([]byte{}, socket.WAConnHeader...), data...)
}

func clientHello() []byte {
	hello, _ := proto.Marshal(&waWa6.HandshakeMessage{ClientHello: &waWa6.HandshakeMessage_ClientHello{Ephemeral: keys.NewKeyPair().Pub[:]}})
	return hello
}

func TestHostileClientsAreDisconnectedAndTheServerKeepsServing(t *testing.T) {
	srv := startServer(t, Config{HandshakeTimeout: 300 * time.Millisecond, MaxFrameSize: 64 << 10})
	cases := map[string][][]byte{
		"wrong header":                {[]byte("GET / HTTP/1.1\r\n")},
		"frame over the limit":        {withHeader([]byte{0xff, 0xff, 0xff})},
		"garbage client hello":        {withHeader(frame([]byte{0x12, 0x03, 0xff, 0xff}))},
		"hello without ephemeral":     {withHeader(frame([]byte{}))},
		"garbage client finish":       {withHeader(frame(clientHello())), frame([]byte("not a finish"))},
		"silent after the header":     {socket.WAConnHeader},
		"half a frame then silence":   {withHeader([]byte{0, 0, 10, 1, 2})},
		"websocket message too large": {make([]byte, 200<<10)},
	}
	for name, msgs := range cases {
		t.Run(name, func(t *testing.T) {
			ws := rawDial(t, srv.Addr())
			defer ws.CloseNow()
			for _, m := range msgs {
				if err := ws.Write(context.Background(), websocket.MessageBinary, m); err != nil {
					break
				}
			}
			if !closedByServer(ws, 3*time.Second) {
				t.Fatal("server kept the connection open")
			}
		})
	}
	t.Run("text messages are ignored, not fatal", func(t *testing.T) {
		ws := rawDial(t, srv.Addr())
		defer ws.CloseNow()
		ws.Write(context.Background(), websocket.MessageText, []byte("hello"))
		if !closedByServer(ws, 3*time.Second) { // then the handshake timeout closes it
			t.Fatal("server kept a connection that never handshaked")
		}
	})
	// After all that, a real client still pairs and connects.
	pairedClient(t, srv, "5511900000100")
}

func TestPerConnectionGoroutinesEndWhenConnectionsClose(t *testing.T) {
	srv := startServer(t, Config{HandshakeTimeout: 2 * time.Second})
	settle := func(want int) int {
		deadline := time.Now().Add(5 * time.Second)
		n := runtime.NumGoroutine()
		for n > want && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
			n = runtime.NumGoroutine()
		}
		return n
	}
	time.Sleep(50 * time.Millisecond)
	baseline := runtime.NumGoroutine()

	const clients = 20
	var conns []*websocket.Conn
	for range clients {
		ws := rawDial(t, srv.Addr())
		ws.Write(context.Background(), websocket.MessageBinary, withHeader(frame(clientHello())))
		conns = append(conns, ws)
	}
	for srv.Stats().Handlers < clients {
		time.Sleep(10 * time.Millisecond)
	}
	perConn := float64(runtime.NumGoroutine()-baseline) / clients
	if perConn > 3 { // server handler + the test's own client side
		t.Fatalf("%.1f goroutines per connection, want at most 3 (server and test client)", perConn)
	}
	for _, ws := range conns {
		ws.CloseNow()
	}
	if n := settle(baseline); n > baseline {
		t.Fatalf("%d goroutines after closing, baseline %d", n, baseline)
	}
	if st := srv.Stats(); st.Handlers != 0 || st.Connections != 0 {
		t.Fatalf("stats after close: %+v, want no handlers or connections", st)
	}

	// Same with real clients that paired, connected and went away.
	tc, _ := pairedClient(t, srv, "5511900000101")
	tc.cli.Disconnect()
	deadline := time.Now().Add(5 * time.Second)
	for srv.Stats().Handlers != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := srv.Stats(); st.Handlers != 0 || st.Connections != 0 {
		t.Fatalf("stats after whatsmeow disconnect: %+v", st)
	}
}

func TestCloseEndsEveryConnection(t *testing.T) {
	srv := startServer(t, Config{})
	tc, _ := pairedClient(t, srv, "5511900000102")
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor[*events.Disconnected](tc)
	deadline := time.Now().Add(5 * time.Second)
	for srv.Stats().Handlers != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := srv.Stats(); st.Handlers != 0 {
		t.Fatalf("handlers after Close: %d", st.Handlers)
	}
}

func TestFrameDecoderHandlesSplitAndPackedFrames(t *testing.T) {
	stream := withHeader(append(append(frame([]byte("one")), frame([]byte("two"))...), frame(bytes.Repeat([]byte{9}, 300))...))
	for _, chunk := range []int{1, 2, 3, 5, 7, 64, len(stream)} {
		d := newFrameDecoder(1024)
		var got [][]byte
		for i := 0; i < len(stream); i += chunk {
			frames, err := d.feed(stream[i:min(i+chunk, len(stream))])
			if err != nil {
				t.Fatalf("chunk %d: %v", chunk, err)
			}
			got = append(got, frames...)
		}
		if len(got) != 3 || string(got[0]) != "one" || string(got[1]) != "two" || len(got[2]) != 300 {
			t.Fatalf("chunk %d: got %d frames %q", chunk, len(got), got)
		}
	}
}
