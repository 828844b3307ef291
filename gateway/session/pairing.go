package session

// A scan in flight across a handover or a shutdown. A phone that scans a QR code links a device
// as soon as the client confirms; WhatsApp refuses only a scan whose connection is gone. So the
// session decides, when WhatsApp offers the pairing (PairRequested), whether it may complete:
// only on its current connection, while this replica holds the session and is not closing. An
// accepted pairing is recorded in the registry (and flushed) before the client confirms, and a
// handover (Drop) or a shutdown (Close) waits for it to end before closing the connection, so
// the next holder finds the device and logs it in. A refused one fails on the phone (the user
// scans again), and the next holder rightly shows the QR flow expired. Before, a scan confirmed
// while the replica was closing the connection linked the device at WhatsApp and in whatsmeow's
// store, the session ignored the late PairSuccess, and the next holder reported expired for a
// phone that believed it linked (cluster-failover at 1500 users: 3 sessions).

import (
	"context"
	"errors"
	"fmt"
	"time"

	"wagate/gateway/laravel"
)

// ErrPairingRefused answers a PairRequested the session does not accept: the connection was
// replaced or is being closed, the replica no longer holds the session or is shutting down, or
// the device could not be recorded.
var ErrPairingRefused = errors.New("session: pairing refused: the QR code's connection is closing or no longer this replica's")

// pairRecordTimeout bounds the registry write that records an accepted pairing.
const pairRecordTimeout = 5 * time.Second

// admitPairing decides a PairRequested of the connection of generation gen (see the file's
// comment). Accepted, the device is recorded and flushed to the registry before it returns.
func (m *Manager) admitPairing(s *session, gen uint64, ev PairRequested) error {
	s.mu.Lock()
	if s.gen != gen || s.conn == nil || m.closed.Load() || !m.holds(s) || s.deviceID != "" || ev.DeviceID == "" {
		s.mu.Unlock()
		m.log.Warn("pairing refused: the QR code's connection is closing or no longer this replica's", "session_id", s.id)
		return ErrPairingRefused
	}
	s.pairing = gen
	m.stopQR(s) // the flow must not expire (and close the connection) under the pairing
	s.deviceID = ev.DeviceID
	m.persist(s)
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(m.ctx, pairRecordTimeout)
	defer cancel()
	if err := m.store.Flush(ctx); err != nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.pairing == gen && s.deviceID == ev.DeviceID {
			s.pairing = 0
			s.deviceID = ""
			m.persist(s)
		}
		m.log.Warn("pairing refused: the device could not be recorded", "session_id", s.id, "err", err)
		return fmt.Errorf("%w: %w", ErrPairingRefused, err)
	}
	return nil
}

// pairingInFlight reports whether s accepted a pairing on its current connection whose outcome
// (PairSuccess or PairFailed) has not arrived yet. Callers hold s.mu.
func pairingInFlight(s *session) bool { return s.pairing != 0 && s.pairing == s.gen }

// endPairing handles the outcome of an accepted pairing: a failure after the acceptance (the
// client could not store the device or confirm it) forgets the recorded device and ends the QR
// flow as expired (the phone saw the linking fail; a start shows new codes). Callers hold s.mu.
func (m *Manager) endPairing(s *session, ok bool) {
	admitted := pairingInFlight(s)
	s.pairing = 0
	if ok || !admitted {
		return
	}
	s.deviceID = ""
	m.stopQR(s)
	m.dropConnLocked(s)
	m.persist(s)
	m.setStatus(s, laravel.StatusExpired)
}

// pairOutcomeTimeout bounds the wait for an accepted pairing's outcome (whatsmeow stores the
// device and sends one confirmation: milliseconds). Past it the connection is closed anyway; the
// device is in the registry, and a next holder that does not find it in the store reports the
// flow expired.
const pairOutcomeTimeout = 10 * time.Second

// awaitPairings waits until none of sessions has an accepted pairing in flight, or ctx ends, or
// pairOutcomeTimeout passed.
func (m *Manager) awaitPairings(ctx context.Context, sessions []*session) error {
	ctx, cancel := context.WithTimeout(ctx, pairOutcomeTimeout)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for _, s := range sessions {
		for {
			s.mu.Lock()
			busy := pairingInFlight(s)
			s.mu.Unlock()
			if !busy {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("session: waiting for a pairing in flight: %w", ctx.Err())
			case <-tick.C:
			}
		}
	}
	return nil
}
