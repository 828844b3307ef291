package fakewa

import (
	"fmt"
	"time"

	"go.mau.fi/whatsmeow/types"
)

// An outage makes WhatsApp unreachable for a while, as a network partition or an outage of its
// front does: the connections it covers are cut without a stream error (a network drop) and new
// ones are refused until it ends. Whole-server outages refuse every new WebSocket with HTTP 503
// before the Noise handshake (the client's dial fails); a device outage cannot be told apart
// before the client's login names the device, so its logins are cut there, unanswered, the way a
// connection that dies right after the handshake is.
//
// An outage's start is one instant for every connection (issue 19, chaos seed 1 schedule 19): a
// dial is either refused (it came after) or counts as connected before it, and a connection
// still in its handshake at the start (or admitted while the start was under way) is cut at the
// end of its handshake (admitHandshaken), like a device outage's logins, never after its dial was
// accepted and before the server's hello: whatsmeow notices that close only 20 s later, and
// closing a socket mid-handshake is a behaviour of its own (CutHandshakes).

// Unreachable starts an outage of d: with no jids every connection is cut (paired or pairing)
// and every new one refused; else only the listed devices' connections are cut and their logins
// refused. It returns how many connections were cut. Reachable ends it early.
func (s *Server) Unreachable(jids []types.JID, d time.Duration) (int, error) {
	if d <= 0 {
		return 0, fmt.Errorf("fakewa: an outage needs a positive duration, not %s", d)
	}
	until := time.Now().Add(d)
	s.mu.Lock()
	if !s.started {
		s.mu.Unlock()
		return 0, ErrNotStarted
	}
	var cut []*conn
	if len(jids) == 0 {
		s.downUntil.Store(until.UnixNano())
		for c := range s.conns {
			if c.handshaken { // the others are cut as their handshake ends (admitHandshaken)
				cut = append(cut, c)
			}
		}
	} else {
		for _, jid := range jids {
			dev, ok := s.devices[jid]
			if !ok {
				s.mu.Unlock()
				return 0, fmt.Errorf("%w: %s", ErrUnknownDevice, jid)
			}
			dev.unreachableUntil = until
			if dev.conn != nil {
				cut = append(cut, dev.conn)
			}
		}
	}
	s.mu.Unlock()
	for _, c := range cut {
		if dev := c.loggedInDevice(); dev != nil {
			s.events.add(Event{Kind: EventDropped, Conn: c.id, JID: dev.jid.String(), Phone: dev.account.phone, Detail: "unreachable"})
		}
		c.close("unreachable")
	}
	return len(cut), nil
}

// Reachable ends every outage now: new connections and logins are served again.
func (s *Server) Reachable() {
	s.downUntil.Store(0)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.devices {
		d.unreachableUntil = time.Time{}
	}
}

// admitHandshaken marks c's handshake ended and reports whether c goes on: not while the whole
// server is down (an outage or a restart's downtime that began during its handshake, or while it
// was being admitted), when it is recorded as refused and cut, unanswered, as the outage cut the
// connections it found.
func (c *conn) admitHandshaken() bool {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	c.handshaken = true
	if time.Now().UnixNano() < s.downUntil.Load() {
		s.refused.Add(1)
		s.events.add(Event{Kind: EventUnreachable, Conn: c.id, Detail: "cut at the end of its handshake: server unreachable"})
		return false
	}
	return true
}

// refuseUnreachable cuts a login of a device under an outage, unanswered, and records it; it
// reports whether it did. Callers hold s.mu.
func (c *conn) refuseUnreachable(d *device, now time.Time) bool {
	if d == nil || !now.Before(d.unreachableUntil) {
		return false
	}
	c.s.refused.Add(1)
	c.s.events.add(Event{Kind: EventUnreachable, Conn: c.id, JID: d.jid.String(), Phone: d.account.phone, Detail: "login cut: device unreachable"})
	return true
}
