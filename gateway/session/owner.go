package session

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Owner is the manager's view of cluster ownership (gateway/cluster through gateway/app): which
// sessions this replica holds, and the epoch of each one's shard, the fencing token its event
// versions and registry writes carry. In cluster mode it replaces the manager-wide epoch; in
// single-process mode Config.Owner is nil and nothing here runs.
type Owner interface {
	// Epoch returns the shard of sessionID and the epoch this replica holds it at; ok is false
	// when the replica does not hold it (another replica does, or the shard is moving). It is
	// called for every event and must answer from memory.
	Epoch(sessionID string) (shard int, epoch int64, ok bool)
	// Bump raises a held shard's epoch (a session used up VersionsPerEpoch sequence numbers).
	Bump(ctx context.Context, shard int, epoch int64) (int64, error)
	// Fence asks the cluster (Redis) whether shard is still held by this replica at epoch: the
	// check before an action versions cannot fence, connecting to WhatsApp.
	Fence(ctx context.Context, shard int, epoch int64) (bool, error)
}

// Where a write was fenced (Hooks.FencedWrite).
const (
	// FencedEvent: an event of a session whose shard this replica no longer holds, not emitted.
	FencedEvent = "event"
	// FencedRegistry: a registry record of such a session, not written (the registry's own
	// conditional upsert refuses what slips through: storage.Registry.SetOnFencedWrite).
	FencedRegistry = "registry"
	// FencedConnect: a (re)connect to WhatsApp refused because the shard's holder or epoch in
	// Redis is no longer this replica's.
	FencedConnect = "connect"
	// FencedLogout: a logout refused by the same check (it would unlink or forget the device the
	// shard's new holder runs).
	FencedLogout = "logout"
)

// fenceTimeout bounds the Redis round trip of the fence check before a connect.
const fenceTimeout = 5 * time.Second

// Epoch returns the version epoch this manager reserved at start (storage's NextEpoch): cluster
// mode passes it as the floor of its shard claims, so shard epochs continue above every epoch a
// single-process run handed out.
func (m *Manager) Epoch() int64 {
	m.epochMu.Lock()
	defer m.epochMu.Unlock()
	return m.epoch
}

// firstEpoch is the epoch a new session object starts at: the manager's, or 0 in cluster mode
// (its first version takes the shard's epoch).
func (m *Manager) firstEpoch() int64 {
	if m.owner != nil {
		return 0
	}
	return m.Epoch()
}

// holds reports whether this replica may act for s: always in single-process mode; in cluster
// mode while it holds s's shard and s was not dropped. Callers hold s.mu.
func (m *Manager) holds(s *session) bool {
	if m.owner == nil {
		return true
	}
	if s.dropped {
		return false
	}
	_, _, ok := m.owner.Epoch(s.id)
	return ok
}

// fenced counts a write that was not made because the shard is not held.
func (m *Manager) fenced(where string) {
	if h := m.cfg.Hooks.FencedWrite; h != nil {
		h(where)
	}
}

// shardEpoch returns the epoch the counter of s at (epoch, seq) continues in, in cluster mode:
// the shard's current epoch, bumped in Redis when the counter is used up at it; false when the
// shard is not held (or its epoch went backwards, which only a lost claim can do). Callers hold
// s.mu.
func (m *Manager) shardEpoch(s *session, epoch, seq int64) (int64, bool) {
	shard, e, ok := m.owner.Epoch(s.id)
	if !ok {
		return 0, false
	}
	if e < epoch {
		m.log.Error("the shard's epoch is below the one this session already used; not emitting", "session_id", s.id, "shard", shard,
			"epoch", e, "used", epoch)
		return 0, false
	}
	if e == epoch && seq >= VersionsPerEpoch-1 {
		ctx, cancel := context.WithTimeout(m.ctx, fenceTimeout)
		defer cancel()
		ne, err := m.owner.Bump(ctx, shard, e)
		if err != nil {
			m.log.Error("raising the shard's epoch failed; not emitting", "session_id", s.id, "shard", shard, "err", err)
			return 0, false
		}
		return ne, true
	}
	return e, true
}

// fenceStart checks, before connecting s, that this replica still holds s's shard at its epoch
// in Redis. done is true when start must return (info, err) at once: s is already connected or
// connecting (nothing to check), or the fence refused (ErrNotOwner) or could not be checked.
func (m *Manager) fenceStart(ctx context.Context, s *session) (info Info, done bool, err error) {
	s.mu.Lock()
	switch {
	case s.dropped:
		s.mu.Unlock()
		return Info{}, true, ErrNotOwner
	case s.conn != nil || s.starting:
		info = m.info(s)
		s.mu.Unlock()
		return info, true, nil
	}
	s.mu.Unlock()
	shard, epoch, ok := m.owner.Epoch(s.id)
	if !ok {
		m.fenced(FencedConnect)
		return Info{}, true, ErrNotOwner
	}
	fctx, cancel := context.WithTimeout(ctx, fenceTimeout)
	defer cancel()
	held, err := m.owner.Fence(fctx, shard, epoch)
	if err != nil {
		return Info{}, true, fmt.Errorf("session %s: fence check before connecting: %w", s.id, err)
	}
	if !held {
		m.fenced(FencedConnect)
		m.log.Warn("not connecting: the session's shard is no longer this replica's", "session_id", s.id, "shard", shard, "epoch", epoch)
		return Info{}, true, ErrNotOwner
	}
	return Info{}, false, nil
}

// fenceLogout checks in Redis, in cluster mode, that this replica still holds session id's shard
// before a logout, which cannot be undone and which versions cannot fence: a replica that lost the
// shard without noticing yet (paused, cut from Redis) would unlink or forget the device the new
// holder runs. Nil in single-process mode.
func (m *Manager) fenceLogout(ctx context.Context, id string) error {
	if m.owner == nil {
		return nil
	}
	shard, epoch, ok := m.owner.Epoch(id)
	if !ok {
		// Not held here (handed over, or this replica is past its renew deadline): as refused
		// as by the check in Redis below, and counted alike.
		m.fenced(FencedLogout)
		return ErrNotOwner
	}
	fctx, cancel := context.WithTimeout(ctx, fenceTimeout)
	defer cancel()
	held, err := m.owner.Fence(fctx, shard, epoch)
	if err != nil {
		return fmt.Errorf("session %s: fence check before logging out: %w", id, err)
	}
	if !held {
		m.fenced(FencedLogout)
		m.log.Warn("not logging out: the session's shard is no longer this replica's", "session_id", id, "shard", shard, "epoch", epoch)
		return ErrNotOwner
	}
	return nil
}

// Adopt runs claim (which claims shards for this replica, so that Owner.Epoch answers for
// them) and then brings in the sessions of held shards it does not run yet: it reads the shared
// registry, restores each such record as Restore does, sending its status again with the shard's
// epoch, and reconnects the paired ones in the background (Restoring counts them). Start waits
// while an Adopt runs, so a session of a just claimed shard is never started from nothing before
// its record (maybe a paired device) is read. It returns how many sessions it adopted.
func (m *Manager) Adopt(ctx context.Context, claim func(ctx context.Context) error) (int, error) {
	if m.closed.Load() {
		return 0, ErrClosed
	}
	m.adoptMu.Lock()
	defer m.adoptMu.Unlock()
	if err := claim(ctx); err != nil {
		return 0, err
	}
	recs, err := m.store.Load(ctx)
	if err != nil {
		return 0, err
	}
	return m.restore(recs, true), nil
}

// Drop stops running the sessions whose id match selects (cluster mode: their shards are handed
// over, lost, or the replica is fenced): they leave the manager, their WhatsApp connections are
// closed (devices stay paired; nothing is reported: the next holder reports), and nothing acts
// for them any more. With flush (a handover) their queued events still reach the delivery and
// the registry is flushed before Drop returns (bounded by ctx), so the next holder finds them;
// without (the shard is already someone else's) queued events are discarded. It returns how many
// sessions it dropped.
func (m *Manager) Drop(ctx context.Context, match func(sessionID string) bool, flush bool) (int, error) {
	m.mu.Lock()
	var gone []*session
	for id, s := range m.sessions {
		if match(id) {
			gone = append(gone, s)
			delete(m.sessions, id)
		}
	}
	if len(gone) > 0 {
		m.ids = slices.DeleteFunc(m.ids, func(id string) bool { _, ok := m.sessions[id]; return !ok })
	}
	m.mu.Unlock()
	if len(gone) == 0 {
		return 0, nil
	}

	for _, s := range gone {
		s.mu.Lock()
		s.dropped = true // refuses a scan from now on (admitPairing)
		m.tally(s)       // no longer counted here: the next holder counts it
		s.mu.Unlock()
	}
	var pairErr error
	if flush {
		// A scan accepted before the handover completes on its connection first (pairing.go):
		// its device is in the registry, and the next holder logs it in.
		pairErr = m.awaitPairings(ctx, gone)
	}
	var conns []Conn
	for _, s := range gone {
		s.mu.Lock()
		if c := m.detachConn(s); c != nil {
			conns = append(conns, c)
		}
		m.stopQR(s)
		if !flush {
			s.outq = s.outq[:0]
		}
		s.mu.Unlock()
		m.dirtyMu.Lock()
		delete(m.dirty, s)
		m.dirtyMu.Unlock()
	}
	<-disconnectAll(conns)
	m.log.Info("sessions dropped", "sessions", len(gone), "disconnected", len(conns), "flush", flush)
	if !flush {
		return len(gone), nil
	}
	if pairErr != nil {
		return len(gone), fmt.Errorf("session: handing over %d sessions: %w", len(gone), pairErr)
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for _, s := range gone {
		for {
			// A session still connecting had no connection to close (detachConn leaves it to
			// its start, which closes it when the connect returns): wait for that start too,
			// so the shard is released only after the old connection logged in or failed.
			// Released before, that connect could log in after the new holder's and replace it
			// (WhatsApp keeps the latest), and the new holder parked the session as taken over
			// (cluster-failover at 300 and 500 users: 3 sessions left disconnected).
			s.mu.Lock()
			busy := s.draining || s.starting
			s.mu.Unlock()
			if !busy {
				break
			}
			select {
			case <-ctx.Done():
				return len(gone), fmt.Errorf("session: handing over %d sessions: queued events or a connect in flight: %w", len(gone), ctx.Err())
			case <-tick.C:
			}
		}
	}
	if err := m.store.Flush(ctx); err != nil {
		return len(gone), fmt.Errorf("session: handing over %d sessions: %w", len(gone), err)
	}
	return len(gone), nil
}
