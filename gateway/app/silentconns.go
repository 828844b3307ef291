package app

import (
	"net"
	"net/http"
	"sync"
)

// silentConns tracks the API connections that have not sent a request yet (http.StateNew) and
// closes them when the server shuts down: http.Server.Shutdown counts such a connection as
// active for its first 5 s, and clients open them routinely (Go's http.Transport keeps a
// connection it dialled for a request that another connection served first; load balancers and
// browsers preconnect), so a stop waited up to 5 s for requests that were never coming (chaos
// campaign: 3 of 10 worlds spent 5.3 s stopping, all of it in the API server's Shutdown).
type silentConns struct {
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	shutdown bool
}

// closeSilentConnsOnShutdown makes srv close, once its Shutdown has closed the listeners, every
// connection that has not sent a request (a request never sent cannot be in flight), keeping
// any ConnState hook srv already has. Call it before srv serves.
func closeSilentConnsOnShutdown(srv *http.Server) {
	t := &silentConns{conns: map[net.Conn]struct{}{}}
	prev := srv.ConnState
	srv.ConnState = func(c net.Conn, st http.ConnState) {
		t.mu.Lock()
		switch {
		case st != http.StateNew:
			delete(t.conns, c)
		case t.shutdown: // accepted just before the listener closed
			_ = c.Close()
		default:
			t.conns[c] = struct{}{}
		}
		t.mu.Unlock()
		if prev != nil {
			prev(c, st)
		}
	}
	srv.RegisterOnShutdown(t.closeAll)
}

func (t *silentConns) closeAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.shutdown = true
	for c := range t.conns {
		_ = c.Close()
		delete(t.conns, c)
	}
}
