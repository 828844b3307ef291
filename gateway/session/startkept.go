package session

import (
	"context"
	"errors"
	"time"
)

// startKept is Start's connect of s, asked for through the API: as start, except that a paired
// session whose connect fails (WhatsApp unreachable for a moment, a network error) is kept and
// retried in the background, as a restored session's first connect and a dropped connection are
// (reconnectLater: 1 s, doubling to 30 s while it fails, until it connects or something else
// touches the session), and the caller gets the session as it is now (not connected) rather
// than the error: it is connecting, and Laravel hears of its connection from the status it
// reports then. Before, such a start returned the error and nothing retried: the session stayed
// paired and disconnected until the next explicit start or restart. What ends a session's
// connection for good is not retried: a device logged out or unlinked while it connected (its
// device is cleared), a session parked, dropped (cluster) or started again meanwhile, and an
// unpaired session, whose QR flow expired with the failure (start says so).
func (m *Manager) startKept(ctx context.Context, s *session) (Info, error) {
	info, err := m.start(ctx, s, true)
	if err == nil || errors.Is(err, ErrClosed) || errors.Is(err, ErrNotOwner) || errors.Is(err, ErrBusy) || m.closed.Load() {
		return info, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.deviceID == "" || s.parked != "" || s.dropped || s.conn != nil || s.starting {
		return Info{}, err
	}
	m.log.Warn("connecting a paired session failed; retrying in the background", "session_id", s.id, "in", startRetryDelay, "err", err)
	m.reconnectLater(s, startRetryDelay)
	return m.info(s), nil
}

// startRetryDelay is the wait before the first retry of a start whose connect failed, as for a
// restored session's first connect (restore.go).
const startRetryDelay = time.Second
