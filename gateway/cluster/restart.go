package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// DefaultRestartGrace is how long a replica stopped by SIGTERM keeps its shards for its return by
// default (the gateway's cluster-restart-grace setting): longer than a restart takes (the process
// exits, starts again and joins), short enough that a replica that does not come back (scaled
// down) leaves its sessions unconnected for at most this long.
const DefaultRestartGrace = 30 * time.Second

// MaxRestartGrace bounds the restart grace: a replica that never returns leaves its sessions
// unconnected for that long.
const MaxRestartGrace = 10 * time.Minute

// LeaveReturning ends the member's lease like Leave but keeps its shards for its replica's return:
// for grace (on Redis's clock) they stay named after this incarnation and only a new incarnation
// of the same name claims them (a StatefulSet or Compose restart keeps the name), so a rolling
// update moves each session once, to the restarted replica, instead of away and back. When the
// name has not joined again within grace, the shards are anyone's, as after Leave. A grace <= 0
// is Leave. The member is fenced afterwards.
func (m *Member) LeaveReturning(ctx context.Context, grace time.Duration) error {
	if grace <= 0 {
		return m.Leave(ctx)
	}
	ms := max(grace.Milliseconds(), 1)
	n, err := leaveScript.Run(ctx, m.s.rdb, m.s.scriptKeys(), m.id, ms).Int()
	if err != nil {
		return fmt.Errorf("cluster: leave %s: %w", m.id, err)
	}
	m.s.log.Info("cluster: left; its shards wait for it to return", "member", m.id, "shards", n, "grace", grace)
	m.fence(errors.New("left the cluster"))
	return nil
}

// returning returns the names whose restart grace has not ended (LeaveReturning), on Redis's clock.
func (s *Store) returning(ctx context.Context) (map[string]bool, error) {
	res, err := returningScript.Run(ctx, s.rdb, s.scriptKeys()).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("cluster: list returning replicas: %w", err)
	}
	out := make(map[string]bool, len(res)/2)
	for i := 0; i+1 < len(res); i += 2 {
		out[res[i]] = true
	}
	return out, nil
}
