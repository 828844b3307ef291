package fakewa

import (
	"fmt"
	"sync"
	"time"

	"go.mau.fi/whatsmeow/types"
)

// A silence makes WhatsApp stop answering without closing anything, as a frozen server or a
// half-open TCP path does: the connections it covers stay open, what their clients send is
// neither read nor answered and nothing is pushed to them (replies, messages, receipts wait),
// until it ends; then the server reads what waited and answers it, if the client is still there.
// A client notices only through its keepalive (whatsmeow pings every 20-30 s and gives up after
// KeepAliveMaxFailTime). A whole-server silence also holds new connections before their
// WebSocket upgrade; a device silence holds the device's logins unanswered.

// silence is the server's silences; its lock is never held while waiting.
type silence struct {
	mu      sync.Mutex
	all     time.Time               // every connection is silent until then
	devices map[types.JID]time.Time // the device's connections are silent until then
	ended   chan struct{}           // closed (and replaced) when silences end early
}

// until returns when the silence covering jid (empty: only the whole server's) ends, and a
// channel closed if it ends early.
func (s *silence) until(jid types.JID) (time.Time, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended == nil {
		s.ended = make(chan struct{})
	}
	t := s.all
	if d, ok := s.devices[jid]; ok && !jid.IsEmpty() && d.After(t) {
		t = d
	}
	return t, s.ended
}

// Silence starts a silence of d: with no jids every connection stops being read and answered
// and new ones are held before their upgrade; else only the listed devices' connections and
// logins. It returns how many open connections went silent. EndSilence ends it early.
func (s *Server) Silence(jids []types.JID, d time.Duration) (int, error) {
	if d <= 0 {
		return 0, fmt.Errorf("fakewa: a silence needs a positive duration, not %s", d)
	}
	until := time.Now().Add(d)
	s.mu.Lock()
	if !s.started {
		s.mu.Unlock()
		return 0, ErrNotStarted
	}
	silenced := 0
	if len(jids) == 0 {
		silenced = len(s.conns)
	} else {
		for _, jid := range jids {
			dev, ok := s.devices[jid]
			if !ok {
				s.mu.Unlock()
				return 0, fmt.Errorf("%w: %s", ErrUnknownDevice, jid)
			}
			if dev.conn != nil {
				silenced++
			}
		}
	}
	s.mu.Unlock()
	s.silence.mu.Lock()
	if len(jids) == 0 {
		s.silence.all = until
	} else {
		if s.silence.devices == nil {
			s.silence.devices = map[types.JID]time.Time{}
		}
		for _, jid := range jids {
			s.silence.devices[jid] = until
		}
	}
	s.silence.mu.Unlock()
	s.events.add(Event{Kind: EventSilenced, Detail: fmt.Sprintf("%d connections silent for %s (%d devices named)", silenced, d, len(jids))})
	return silenced, nil
}

// EndSilence ends every silence now: what waited is read and answered.
func (s *Server) EndSilence() {
	s.silence.mu.Lock()
	defer s.silence.mu.Unlock()
	s.silence.all, s.silence.devices = time.Time{}, nil
	if s.silence.ended != nil {
		close(s.silence.ended)
	}
	s.silence.ended = make(chan struct{})
}

// awaitSilenceEnd waits while a silence covers jid (empty: the whole server's only) and reports
// whether the connection is still there to go on (false: it closed, or done ended, meanwhile).
func (s *Server) awaitSilenceEnd(jid types.JID, done <-chan struct{}) bool {
	for {
		until, ended := s.silence.until(jid)
		wait := time.Until(until)
		if wait <= 0 {
			return true
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ended:
		case <-done:
			t.Stop()
			return false
		}
		t.Stop()
	}
}

// awaitAudible waits while a silence covers the connection (the whole server's, or its logged-in
// device's) and reports whether it is still open.
func (c *conn) awaitAudible() bool {
	jid := types.EmptyJID
	if j := c.loginJID.Load(); j != nil {
		jid = *j
	}
	return c.s.awaitSilenceEnd(jid, c.ctx.Done())
}
