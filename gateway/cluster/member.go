package cluster

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// Callbacks tell the replica which shards it lost while it stays a member. They run on the
// goroutine that noticed (Member.Run or the caller of Renew) and must not block for long. Losing
// them all, fencing, is no callback: Member.Run returns the ErrFenced error (Member.Err keeps it),
// and the replica must then disconnect the sessions of every shard it held, stop emitting for
// them, and Join again.
type Callbacks struct {
	// OnLost runs for a shard found held by someone else or at a newer epoch at a renew: the
	// replica must stop acting for that shard's sessions.
	OnLost func(shard int, epoch int64)
}

// Member is one incarnation of a replica in the cluster. A fenced member stays fenced: the
// replica joins again and gets a new incarnation id.
type Member struct {
	s        *Store
	id, name string
	cb       Callbacks

	mu     sync.Mutex
	claims map[int]int64 // shard -> epoch this member holds, as far as it knows
	lastOK time.Time     // when the last successful renew (or the join) was sent; monotonic

	fenced    chan struct{}
	fenceOnce sync.Once
	fenceErr  error
}

// Join makes a new incarnation of the replica name (advertised at addr) a live member.
func (s *Store) Join(ctx context.Context, name, addr string, cb Callbacks) (*Member, error) {
	sent := time.Now()
	res, err := joinScript.Run(ctx, s.rdb, s.scriptKeys(), name, addr,
		s.opts.LeaseTTL.Milliseconds(), s.opts.PruneAfter.Milliseconds()).Slice()
	if err != nil {
		return nil, fmt.Errorf("cluster: join as %s: %w", name, err)
	}
	id, _ := res[0].(string)
	m := &Member{s: s, id: id, name: name, cb: cb, claims: make(map[int]int64), lastOK: sent, fenced: make(chan struct{})}
	s.log.Info("cluster: joined", "member", id, "addr", addr)
	return m, nil
}

// ID returns the incarnation id, "<name>#<n>".
func (m *Member) ID() string { return m.id }

// Name returns the replica's stable name.
func (m *Member) Name() string { return m.name }

// Err returns why the member was fenced, nil while it is not.
func (m *Member) Err() error {
	select {
	case <-m.fenced:
		return m.fenceErr
	default:
		return nil
	}
}

// HeldEpoch returns the epoch this member holds shard at, as far as it knows; false when it does
// not hold it (or is fenced). Cheap: the session layer asks for every event.
//
// A member whose renew deadline has passed holds nothing, whether or not Run has noticed yet
// (HeldEpoch fences it then): a process resumed after a pause past its lease (SIGSTOP, a long
// GC or VM stall) runs every goroutine whose timer expired at once, and the delivery's or a
// session's may ask before Run's deadline timer fires. Answering from the claims until then
// let such a replica send a batch of a shard whose new holder had adopted and sent the same
// entries (issue 16, chaos-cluster seed 1 schedule 1: a customer's message applied twice).
func (m *Member) HeldEpoch(shard int) (int64, bool) {
	m.mu.Lock()
	if m.lapsedLocked() {
		m.mu.Unlock()
		m.fenceLapsed()
		return 0, false
	}
	defer m.mu.Unlock()
	e, ok := m.claims[shard]
	return e, ok
}

// HeldCount returns how many shards this member holds, as far as it knows (none past its renew
// deadline, as HeldEpoch).
func (m *Member) HeldCount() int {
	m.mu.Lock()
	if m.lapsedLocked() {
		m.mu.Unlock()
		m.fenceLapsed()
		return 0
	}
	defer m.mu.Unlock()
	return len(m.claims)
}

// HeldShards returns the shards this member holds, as far as it knows, in no order (none past
// its renew deadline, as HeldEpoch).
func (m *Member) HeldShards() []int {
	m.mu.Lock()
	if m.lapsedLocked() {
		m.mu.Unlock()
		m.fenceLapsed()
		return nil
	}
	defer m.mu.Unlock()
	return slices.Collect(maps.Keys(m.claims))
}

// lapsedLocked reports whether the renew deadline has passed since the last successful renew
// (on this process's monotonic clock): the lease may have ended in Redis, or will before any
// renew could land. Callers hold mu.
func (m *Member) lapsedLocked() bool {
	return time.Since(m.lastOK) >= m.s.opts.RenewDeadline
}

// fenceLapsed fences a member found past its renew deadline (a no-op when it is fenced already).
func (m *Member) fenceLapsed() {
	m.fence(fmt.Errorf("no renew succeeded within the renew deadline %s", m.s.opts.RenewDeadline))
}

func (m *Member) fence(cause error) {
	m.fenceOnce.Do(func() {
		// Under mu, so that a concurrent Claim either sees the fence or is cleared by it.
		m.mu.Lock()
		held := len(m.claims)
		m.claims = make(map[int]int64)
		m.fenceErr = fmt.Errorf("%w: %s: %w", ErrFenced, m.id, cause)
		close(m.fenced)
		m.mu.Unlock()
		m.s.log.Warn("cluster: member fenced; its shards must be dropped", "member", m.id, "held", held, "err", cause)
	})
}

// Run renews the lease every RenewInterval until ctx ends (returns ctx's error) or the member is
// fenced (returns the ErrFenced error): when Redis says the lease expired, or when no renew
// succeeded within RenewDeadline of the last successful one, measured on this process's
// monotonic clock from when that renew was sent (so the replica stops before Redis lets another
// member claim its shards, as long as it is running at all). A hung Redis call does not delay
// the deadline. After fencing, a best-effort Leave releases the old incarnation's shards at once
// (otherwise they wait for its lease to expire); then Join again.
func (m *Member) Run(ctx context.Context) error {
	tick := time.NewTicker(m.s.opts.RenewInterval)
	defer tick.Stop()
	deadline := time.NewTimer(m.untilDeadline())
	defer deadline.Stop()
	// Renews run on their own goroutine so a hung Redis call cannot hold back the deadline.
	results := make(chan error, 1)
	inflight := false
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-m.fenced:
			return m.fenceErr
		case <-deadline.C:
			if d := m.untilDeadline(); d > 0 { // a renew succeeded since the timer was set
				deadline.Reset(d)
				continue
			}
			m.fenceLapsed()
			return m.fenceErr
		case err := <-results:
			inflight = false
			if errors.Is(err, ErrFenced) {
				return m.fenceErr
			}
			if err != nil && ctx.Err() == nil {
				m.s.log.Warn("cluster: renew failed; retrying", "member", m.id, "err", err, "until_fenced", m.untilDeadline())
			}
		case <-tick.C:
			if !inflight {
				inflight = true
				go func() { _, err := m.Renew(ctx); results <- err }()
			}
		}
	}
}

func (m *Member) untilDeadline() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return time.Until(m.lastOK.Add(m.s.opts.RenewDeadline))
}

// Renew extends the member's lease once and checks every shard it holds in the same script (a
// compare-and-set on holder and epoch). It returns the shards found lost (OnLost runs for each).
// A member past its renew deadline is fenced without asking Redis; one whose lease expired in
// Redis is refused and fenced. Both return an error matching ErrFenced.
func (m *Member) Renew(ctx context.Context) ([]int, error) {
	if err := m.Err(); err != nil {
		return nil, err
	}
	d := m.untilDeadline()
	if d <= 0 {
		m.fenceLapsed()
		return nil, m.fenceErr
	}
	m.mu.Lock()
	args := []any{m.id, m.s.opts.LeaseTTL.Milliseconds()}
	asked := maps.Clone(m.claims)
	m.mu.Unlock()
	for k, e := range asked {
		args = append(args, k, e)
	}
	rctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	sent := time.Now()
	res, err := renewScript.Run(rctx, m.s.rdb, m.s.scriptKeys(), args...).Int64Slice()
	if err != nil {
		return nil, fmt.Errorf("cluster: renew %s: %w", m.id, err)
	}
	if len(res) == 0 || res[0] < 0 {
		m.fence(errors.New("lease expired in Redis (renew refused)"))
		return nil, m.fenceErr
	}
	var lost []int
	var lostEpochs []int64
	m.mu.Lock()
	if m.Err() == nil {
		m.lastOK = sent
	}
	for _, k := range res[1:] {
		shard := int(k)
		// Only if the claim is still the one asked about: the shard may have been released and
		// claimed again at a new epoch while the renew ran.
		if e, ok := m.claims[shard]; ok && e == asked[shard] {
			delete(m.claims, shard)
			lost = append(lost, shard)
			lostEpochs = append(lostEpochs, e)
		}
	}
	m.mu.Unlock()
	for i, k := range lost {
		m.s.log.Warn("cluster: shard lost", "member", m.id, "shard", k, "epoch", lostEpochs[i])
		if m.cb.OnLost != nil {
			m.cb.OnLost(k, lostEpochs[i])
		}
	}
	return lost, nil
}

// Claim takes shard if nobody holds it or its holder is no longer live, raising its epoch to
// max(epoch+1, Redis time in seconds, floor), and returns that epoch: the fencing token of every
// write for the shard's sessions. floor lets a caller continue above versions issued before
// (storage's NextEpoch); 0 means none. Claiming a shard the member already holds returns the
// current epoch. A shard held by a live member returns ErrHeld; a fenced member ErrFenced.
func (m *Member) Claim(ctx context.Context, shard int, floor int64) (int64, error) {
	if err := m.Err(); err != nil {
		return 0, err
	}
	if m.untilDeadline() <= 0 { // its lease may be over: what it claimed now it would not hold
		m.fenceLapsed()
		return 0, m.fenceErr
	}
	if shard < 0 || shard >= m.s.opts.Shards {
		return 0, fmt.Errorf("cluster: shard %d out of range [0, %d)", shard, m.s.opts.Shards)
	}
	res, err := claimScript.Run(ctx, m.s.rdb, m.s.scriptKeys(), shard, m.id, floor).Slice()
	if err != nil {
		return 0, fmt.Errorf("cluster: claim shard %d: %w", shard, err)
	}
	status, _ := res[0].(int64)
	epoch, _ := res[1].(int64)
	holder, _ := res[2].(string)
	switch status {
	case 1, 2:
		m.mu.Lock()
		fenced := m.Err() != nil
		if !fenced {
			m.claims[shard] = epoch
		}
		m.mu.Unlock()
		if fenced { // fenced while the claim ran: hand it back
			_ = m.Release(context.WithoutCancel(ctx), shard, epoch)
			return 0, m.fenceErr
		}
		if status == 1 {
			m.s.log.Debug("cluster: shard claimed", "member", m.id, "shard", shard, "epoch", epoch, "previous", holder)
		}
		return epoch, nil
	case 0:
		return 0, fmt.Errorf("%w: shard %d held by %s at epoch %d", ErrHeld, shard, holder, epoch)
	default:
		m.fence(errors.New("lease expired in Redis (claim refused)"))
		return 0, m.fenceErr
	}
}

// Release hands shard back (a handoff or a clean stop); only the holder at epoch may. The epoch
// stays, so the next claim raises it. A refused release returns ErrNotHolder.
func (m *Member) Release(ctx context.Context, shard int, epoch int64) error {
	n, err := releaseScript.Run(ctx, m.s.rdb, m.s.scriptKeys(), shard, m.id, epoch).Int()
	if err != nil {
		return fmt.Errorf("cluster: release shard %d: %w", shard, err)
	}
	m.mu.Lock()
	if m.claims[shard] == epoch {
		delete(m.claims, shard)
	}
	m.mu.Unlock()
	if n != 1 {
		return fmt.Errorf("%w: release of shard %d at epoch %d by %s", ErrNotHolder, shard, epoch, m.id)
	}
	return nil
}

// Bump raises the epoch of a shard the member holds at epoch and returns the new one (for a
// session that used up its VersionsPerEpoch sequence numbers). Refused: ErrNotHolder.
func (m *Member) Bump(ctx context.Context, shard int, epoch int64) (int64, error) {
	if err := m.Err(); err != nil {
		return 0, err
	}
	ne, err := bumpScript.Run(ctx, m.s.rdb, m.s.scriptKeys(), shard, m.id, epoch).Int64()
	if err != nil {
		return 0, fmt.Errorf("cluster: bump shard %d: %w", shard, err)
	}
	if ne == 0 {
		return 0, fmt.Errorf("%w: bump of shard %d at epoch %d by %s", ErrNotHolder, shard, epoch, m.id)
	}
	m.mu.Lock()
	if m.claims[shard] == epoch {
		m.claims[shard] = ne
	}
	m.mu.Unlock()
	return ne, nil
}

// Fence reports whether this member still holds shard at epoch (Store.Fence); false once fenced.
func (m *Member) Fence(ctx context.Context, shard int, epoch int64) (bool, error) {
	if m.Err() != nil {
		return false, nil
	}
	return m.s.Fence(ctx, m.id, shard, epoch)
}

// Leave releases every shard this member holds and ends its lease (SIGTERM: the next holders claim
// at once, without waiting for the TTL). The member is fenced afterwards.
func (m *Member) Leave(ctx context.Context) error {
	n, err := leaveScript.Run(ctx, m.s.rdb, m.s.scriptKeys(), m.id).Int()
	if err != nil {
		return fmt.Errorf("cluster: leave %s: %w", m.id, err)
	}
	m.s.log.Info("cluster: left", "member", m.id, "released", n)
	m.fence(errors.New("left the cluster"))
	return nil
}
