package whatsapp

import (
	"errors"
	"io"
	"net/http"
	"sync"
)

// A socket closed during the Noise handshake (issue 19, chaos seed 1 schedule 19 at 2a41874).
// whatsmeow's handshake (handshake.go, doHandshake) waits for the server's hello on its frame
// channel or for NoiseHandshakeResponseTimeout, a 20 s constant, and nothing else: when WhatsApp
// closes the socket after accepting the dial and before its hello, the socket's read loop ends
// but the handshake keeps waiting, with the client's socket lock held, and Connect returns 20 s
// later. A session reconnecting at the start of an outage stayed down 20 s past its end.
//
// So every client dials its WebSocket through an HTTP client of its connection (socketWatch)
// that watches the upgraded socket: the first read of it that fails (the peer closed it, or the
// network broke) marks the Connect attempt that dialled it (dialAttempt), and Connect returns at
// once with errClosedInHandshake instead of waiting for whatsmeow. whatsmeow's handshake, which
// cannot succeed on a closed socket, ends by itself within its timeout; the connection then
// closes what it opened (conn.abandon). Nothing of whatsmeow is changed or reached into: the
// watch sees only the bytes whatsmeow reads.

// errClosedInHandshake is returned by Connect when the socket it dialled closed before the
// handshake ended.
var errClosedInHandshake = errors.New("whatsapp: the socket closed during the noise handshake")

// dialAttempt is one Connect of a connection: gone is closed once the socket it dialled cannot
// be read any more (err then says why).
type dialAttempt struct {
	gone chan struct{}
	once sync.Once
	err  error // set before gone is closed
}

func newDialAttempt() *dialAttempt { return &dialAttempt{gone: make(chan struct{})} }

// socketGone records that the attempt's socket failed a read with err (not nil); later calls do
// nothing.
func (a *dialAttempt) socketGone(err error) {
	a.once.Do(func() {
		a.err = err
		close(a.gone)
	})
}

// goneErr is the read error that showed the attempt's socket gone, nil while it is not.
func (a *dialAttempt) goneErr() error {
	select {
	case <-a.gone:
		return a.err
	default:
		return nil
	}
}

// socketWatch is the round tripper of a connection's WebSocket dials: base makes the request; a
// 101 Switching Protocols response's body (the upgraded socket, which whatsmeow's WebSocket
// library reads and writes) is wrapped so that its first failed read marks the dialAttempt that
// attempt returns at that moment (none: not watched).
type socketWatch struct {
	base    http.RoundTripper
	attempt func() *dialAttempt
}

// RoundTrip implements http.RoundTripper.
func (w *socketWatch) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := w.base.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		return resp, err
	}
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	a := w.attempt()
	if !ok || a == nil {
		return resp, nil
	}
	resp.Body = &watchedSocket{ReadWriteCloser: rwc, attempt: a}
	return resp, nil
}

// watchedSocket is an upgraded socket whose failed reads mark its dialAttempt.
type watchedSocket struct {
	io.ReadWriteCloser
	attempt *dialAttempt
}

// Read implements io.Reader.
func (s *watchedSocket) Read(p []byte) (int, error) {
	n, err := s.ReadWriteCloser.Read(p)
	if err != nil {
		s.attempt.socketGone(err)
	}
	return n, err
}
