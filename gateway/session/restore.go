package session

// Restoring the sessions of a previous run (Restore) and bringing back those of shards newly
// held (restore, also used by Adopt): paired sessions reconnect in the background.

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"wagate/gateway/event"
	"wagate/gateway/laravel"
	"wagate/gateway/storage"
)

// Restore loads the sessions of a previous run. A session that was pending (its QR flow died
// with the previous process) becomes expired; every paired session reconnects in the background,
// RestoreConcurrency at a time (see Restoring). Unpaired sessions wait to be started.
func (m *Manager) Restore(ctx context.Context) error {
	recs, err := m.store.Load(ctx)
	if err != nil {
		return err
	}
	m.restore(recs, m.cfg.ResyncRestored)
	return nil
}

// restore brings back the records not yet local (in cluster mode only those of held shards);
// resync sends their statuses again. Paired sessions reconnect in the background.
func (m *Manager) restore(recs []storage.Record, resync bool) int {
	var paired, restored []*session
	m.mu.Lock()
	for _, rec := range recs {
		if _, ok := m.sessions[rec.SessionID]; ok || !laravel.ValidSessionID(rec.SessionID) {
			continue
		}
		if m.owner != nil {
			if _, _, held := m.owner.Epoch(rec.SessionID); !held {
				continue
			}
		}
		s := &session{id: rec.SessionID, created: rec.CreatedAt, updated: rec.UpdatedAt,
			deviceID: rec.DeviceJID, status: rec.Status, parked: rec.Parked, epoch: m.firstEpoch()}
		m.tally(s) // nobody else sees s before m.mu is released
		m.sessions[s.id] = s
		m.ids = append(m.ids, s.id)
		restored = append(restored, s)
		if s.deviceID != "" && s.parked == "" {
			paired = append(paired, s) // a parked session waits for an explicit start
		}
	}
	slices.Sort(m.ids)
	m.mu.Unlock()

	for _, s := range restored {
		s.mu.Lock()
		idle := s.deviceID == "" && s.conn == nil && !s.starting
		parked := s.deviceID != "" && s.parked != "" && s.conn == nil && !s.starting
		switch {
		case idle && s.status == laravel.StatusPending:
			m.setStatus(s, laravel.StatusExpired)
		case (idle || parked) && resync:
			m.emit(s, event.KindStatus, string(s.status))
		case s.deviceID != "" && resync:
			s.resync = true
		}
		s.mu.Unlock()
	}
	m.log.Info("sessions restored", "total", len(restored), "paired", len(paired), "resync", resync)
	if len(paired) == 0 {
		return len(restored)
	}
	m.restoring.Add(int64(len(paired)))
	go func() {
		var wg sync.WaitGroup
		for _, s := range paired {
			if m.closed.Load() || !m.acquireConnect() {
				m.restoring.Add(-1)
				continue
			}
			wg.Add(1)
			go func() {
				defer func() { m.releaseConnect(); wg.Done(); m.restoring.Add(-1) }()
				if _, err := m.start(m.ctx, s, false); err != nil && !errors.Is(err, ErrClosed) && !errors.Is(err, ErrNotOwner) {
					m.log.Warn("reconnect of a paired session failed", "session_id", s.id, "err", err)
					m.retryReconnect(s, time.Second)
				}
			}()
		}
		wg.Wait()
	}()
	return len(restored)
}

// Restoring returns how many paired sessions of a previous run are still reconnecting.
func (m *Manager) Restoring() int { return int(m.restoring.Load()) }
