package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"wagate/gateway/api"
	"wagate/gateway/cluster"
	"wagate/gateway/config"
	"wagate/gateway/metrics"
	"wagate/gateway/session"
	"wagate/gateway/storage"
)

// Cluster mode's pacing (docs/cluster.md).
const (
	// rebalanceInterval is how often a replica reads the shard table and acts on its Plan; a
	// round hands over at most WAGATE_CLUSTER_HANDOVER_RATE shards (default 2 per second), so a
	// join or a leave moves sessions at a bounded rate.
	rebalanceInterval = time.Second
	// roundTimeout bounds one rebalancing round (its Redis calls, the handovers' flushes), so a
	// hung Redis cannot hold the session layer's adopt lock, and with it every start, for long.
	roundTimeout = 15 * time.Second
	// takeoverWatch bounds how long a round waits for the sessions it brought in to reconnect
	// before it records the takeover time.
	takeoverWatch = 2 * time.Minute
)

// clusterNode is this replica's membership in cluster mode: it joins, keeps its lease (Member.Run),
// claims and hands over shards (the rebalancer), drops the sessions of shards it lost, rejoins
// after being fenced, and answers the session layer's ownership questions (session.Owner).
type clusterNode struct {
	store   *cluster.Store
	name    string // the replica's stable name (gateway id)
	addr    string // advertised URL
	log     *slog.Logger
	metrics *metrics.ClusterMetrics
	budget  int // shards handed over per round (WAGATE_CLUSTER_HANDOVER_RATE per second)
	// grace is how long the shards wait for this replica's restart after a SIGTERM
	// (WAGATE_CLUSTER_RESTART_GRACE; 0: the others take them at once).
	grace time.Duration

	manager *session.Manager // set before start
	floor   int64            // every claim's epoch floor: the manager's reserved epoch
	// settle waits until the delivery's sends in progress are settled (batch mode; set before
	// start, nil when the delivery cannot tell).
	settle func(context.Context) error
	// claimed is told the sessions of the shards a claim just took (batch mode: the message
	// journal appends their rows a Redis data loss left to nobody; set before start, nil otherwise).
	claimed func(keep func(sessionID string) bool)

	member atomic.Pointer[cluster.Member]
	ready  atomic.Bool // joined and the first rebalancing round done
	// moving holds the shards being handed over: the session layer no longer acts for them.
	movingMu sync.Mutex
	moving   map[int]bool
	// routes is the shard table of the last round, for Locate (answered from memory).
	routesMu sync.RWMutex
	routes   routeTable

	cancel context.CancelFunc
	done   sync.WaitGroup
	// The lease renewals run apart from the rebalancer so a drain can stop them (and with them
	// the rejoin after a fence) before it leaves, while the rebalancer keeps the routes fresh.
	memberCancel context.CancelFunc
	memberDone   sync.WaitGroup

	// roundMu is held by a rebalancing round and by a drain: a drain never runs beside a claim
	// or a handover.
	roundMu sync.Mutex
	// draining is set when a drain begins: rounds claim and hand over nothing any more (they
	// only read the table for Locate) and a fenced membership does not join again.
	draining atomic.Bool
	// drainTimeout bounds a drain (WAGATE_SHUTDOWN_TIMEOUT, as a SIGTERM's shutdown).
	drainTimeout time.Duration
	drainMu      sync.Mutex
	drainRun     *drainRun // the drain in progress or done; nil before the first
}

// routeTable is a round's view of who holds what: each shard's live holder and each live
// member's advertised address.
type routeTable struct {
	holders []string          // shard -> incarnation id ("" when nobody live holds it)
	addrs   map[string]string // incarnation id -> advertised URL
}

// newClusterNode prepares cluster mode on the shared Redis: it checks the installation's shard
// count (stored at the first start, a different one refused).
func newClusterNode(ctx context.Context, cfg config.Config, rdb redis.UniversalClient, cm *metrics.ClusterMetrics, log *slog.Logger) (*clusterNode, error) {
	if rdb == nil {
		return nil, errors.New("app: cluster mode needs the shared Redis of batch mode")
	}
	interval, deadline := cluster.LeaseTimings(cfg.ClusterLeaseTTL)
	store, err := cluster.New(rdb, cluster.Options{Shards: cfg.ClusterShards, LeaseTTL: cfg.ClusterLeaseTTL,
		RenewInterval: interval, RenewDeadline: deadline, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	if err := store.CheckShards(ctx); err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	name := cfg.GatewayID
	if name == "" {
		if name, err = os.Hostname(); err != nil {
			return nil, fmt.Errorf("app: cluster mode: no gateway id and no host name: %w", err)
		}
	}
	budget := max(1, int(float64(cfg.ClusterHandoverRate)*rebalanceInterval.Seconds()))
	return &clusterNode{store: store, name: name, addr: cfg.AdvertiseURL, log: log, metrics: cm, budget: budget,
		grace: cfg.ClusterRestartGrace, drainTimeout: cfg.ShutdownTimeout, moving: map[int]bool{}}, nil
}

// Epoch implements session.Owner: the epoch this replica holds the session's shard at.
func (n *clusterNode) Epoch(sessionID string) (int, int64, bool) {
	return n.epochOfShard(cluster.Shard(sessionID, n.store.Shards()))
}

// epochOfShard is the epoch this replica holds shard at; false when it does not hold it or is
// handing it over.
func (n *clusterNode) epochOfShard(shard int) (int, int64, bool) {
	m := n.member.Load()
	if m == nil {
		return shard, 0, false
	}
	n.movingMu.Lock()
	moving := n.moving[shard]
	n.movingMu.Unlock()
	if moving {
		return shard, 0, false
	}
	e, ok := m.HeldEpoch(shard)
	return shard, e, ok
}

// holds reports whether this replica holds shard k now and is not handing it over (the outbox
// keeps and adopts the entries of the shards it holds, and drops the waiting ones of shards it
// lost or is handing over, leaving them to the next holder).
func (n *clusterNode) holds(k int) bool {
	_, _, ok := n.epochOfShard(k)
	return ok
}

// leaseHolds reports whether this replica's lease still covers session id's shard: claimed, and
// no renew deadline passed (as after a pause), whether or not it is being handed over. The
// whatsapp driver commits a message's decryption only while it does.
func (n *clusterNode) leaseHolds(sessionID string) bool {
	m := n.member.Load()
	if m == nil {
		return false
	}
	_, ok := m.HeldEpoch(cluster.Shard(sessionID, n.store.Shards()))
	return ok
}

// Bump implements session.Owner.
func (n *clusterNode) Bump(ctx context.Context, shard int, epoch int64) (int64, error) {
	m := n.member.Load()
	if m == nil {
		return 0, cluster.ErrFenced
	}
	return m.Bump(ctx, shard, epoch)
}

// Fence implements session.Owner.
func (n *clusterNode) Fence(ctx context.Context, shard int, epoch int64) (bool, error) {
	m := n.member.Load()
	if m == nil {
		return false, nil
	}
	return m.Fence(ctx, shard, epoch)
}

// setRoutes keeps a round's table for Locate and returns the live members' names.
func (n *clusterNode) setRoutes(members []cluster.MemberInfo, holders []string) (live []string) {
	addrs := make(map[string]string, len(members))
	for _, mi := range members {
		live = append(live, mi.Name)
		addrs[mi.ID] = mi.Addr
	}
	n.routesMu.Lock()
	n.routes = routeTable{holders: holders, addrs: addrs}
	n.routesMu.Unlock()
	return live
}

// Locate implements api.Locator from memory: this replica when it holds the session's shard (and
// is not handing it over), else the holder's advertised URL from the last round's table; Moving
// while the shard is handed over, held by nobody live (a takeover pending), or the table still
// names this replica although it no longer holds it.
func (n *clusterNode) Locate(_ context.Context, sessionID string) (api.Location, error) {
	shard, _, held := n.Epoch(sessionID)
	n.movingMu.Lock()
	moving := n.moving[shard]
	n.movingMu.Unlock()
	switch {
	case moving:
		return api.Location{Moving: true}, nil
	case held:
		return api.Location{Self: true}, nil
	}
	n.routesMu.RLock()
	defer n.routesMu.RUnlock()
	holder := ""
	if shard < len(n.routes.holders) {
		holder = n.routes.holders[shard]
	}
	m := n.member.Load()
	if holder == "" || (m != nil && holder == m.ID()) || n.routes.addrs[holder] == "" {
		return api.Location{Moving: true}, nil
	}
	return api.Location{URL: n.routes.addrs[holder]}, nil
}

// inShards returns a session matcher for shards.
func (n *clusterNode) inShards(shards ...int) func(string) bool {
	set := make(map[int]bool, len(shards))
	for _, k := range shards {
		set[k] = true
	}
	return func(id string) bool { return set[cluster.Shard(id, n.store.Shards())] }
}

// start joins the cluster and runs the lease and the rebalancer until stop.
func (n *clusterNode) start(ctx context.Context) error {
	m, err := n.join(ctx)
	if err != nil {
		return err
	}
	ctx, n.cancel = context.WithCancel(ctx)
	mctx, mcancel := context.WithCancel(ctx)
	n.memberCancel = mcancel
	n.memberDone.Add(1)
	go func() { defer n.memberDone.Done(); n.keepMembership(mctx, m) }()
	n.done.Add(1)
	go func() { defer n.done.Done(); n.rebalance(ctx) }()
	return nil
}

// join makes a new incarnation of this replica a member.
func (n *clusterNode) join(ctx context.Context) (*cluster.Member, error) {
	// Fencing is handled where Member.Run returns (keepMembership).
	m, err := n.store.Join(ctx, n.name, n.addr, cluster.Callbacks{
		OnLost: func(shard int, _ int64) {
			n.metrics.Lost()
			// The shard is someone else's now: stop at once, nothing to flush.
			go func() {
				if _, err := n.manager.Drop(context.Background(), n.inShards(shard), false); err != nil {
					n.log.Warn("cluster: dropping the sessions of a lost shard", "shard", shard, "err", err)
				}
			}()
		},
	})
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	n.member.Store(m)
	return m, nil
}

// keepMembership renews the lease; when the member is fenced it drops every session (their
// shards may be someone else's already), leaves (freeing the shards at once) and joins again as a
// new incarnation, retrying while Redis does not answer.
func (n *clusterNode) keepMembership(ctx context.Context, m *cluster.Member) {
	for {
		err := m.Run(ctx)
		if ctx.Err() != nil {
			return
		}
		n.ready.Store(false)
		n.metrics.MemberFenced()
		n.log.Warn("cluster: this replica was fenced; dropping its sessions and joining again", "member", m.ID(), "err", err)
		if _, err := n.manager.Drop(ctx, func(string) bool { return true }, false); err != nil {
			n.log.Warn("cluster: dropping the sessions after fencing", "err", err)
		}
		lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if err := m.Leave(lctx); err != nil {
			n.log.Warn("cluster: leaving after fencing failed; the old lease expires by itself", "err", err)
		}
		cancel()
		n.metrics.SetHeld(0)
		if n.draining.Load() {
			return // drained: not a member any more
		}
		for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
			if m, err = n.join(ctx); err == nil {
				break
			}
			n.log.Warn("cluster: joining again failed; retrying", "in", wait, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
	}
}

// rebalance runs a round every rebalanceInterval until ctx ends.
func (n *clusterNode) rebalance(ctx context.Context) {
	t := time.NewTicker(rebalanceInterval)
	defer t.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, roundTimeout)
		err := n.round(rctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			n.log.Warn("cluster: rebalancing round failed; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// round reads the shard table, claims the free or orphaned shards assigned to this replica that
// wait for no other replica's restart (bringing in their sessions) and hands over at most budget shards now assigned to
// another live replica. The first successful round makes the replica ready.
func (n *clusterNode) round(ctx context.Context) error {
	n.roundMu.Lock()
	defer n.roundMu.Unlock()
	if n.draining.Load() {
		// Drained (or draining): no claims, no handovers; the table only keeps Locate's routes
		// fresh, since this replica still forwards the requests it receives.
		table, err := n.store.Table(ctx)
		if err != nil {
			return err
		}
		n.metrics.SetMembers(len(n.setRoutes(table.Members, table.Holders)))
		return nil
	}
	m := n.member.Load()
	if m == nil || m.Err() != nil {
		return nil // fenced: keepMembership joins again
	}
	table, err := n.store.Table(ctx)
	if err != nil {
		return err
	}
	live := n.setRoutes(table.Members, table.Holders)
	n.metrics.SetMembers(len(live))
	mv := cluster.Plan(n.store.Shards(), m.ID(), table, n.budget)
	if len(mv.Claim) > 0 {
		if err := n.claim(ctx, m, mv.Claim); err != nil {
			return err
		}
	}
	for _, k := range mv.HandOver {
		if err := n.handOver(ctx, m, k); err != nil {
			n.log.Warn("cluster: handing a shard over failed", "shard", k, "err", err)
		}
	}
	n.metrics.SetHeld(m.HeldCount())
	if !n.ready.Load() && m.Err() == nil {
		n.ready.Store(true)
		n.log.Info("cluster: member ready", "member", m.ID(), "shards_held", m.HeldCount(), "members", len(live))
	}
	return nil
}

// claim claims shards and brings in their sessions; the takeover time is recorded once the
// paired ones finished reconnecting.
func (n *clusterNode) claim(ctx context.Context, m *cluster.Member, shards []int) error {
	start := time.Now()
	claimed := 0
	var taken []int
	adopted, err := n.manager.Adopt(ctx, func(ctx context.Context) error {
		for _, k := range shards {
			_, err := m.Claim(ctx, k, n.floor)
			switch {
			case errors.Is(err, cluster.ErrHeld):
				continue // someone was faster; the next round's table shows it
			case err != nil:
				return err
			}
			n.setMoving(k, false)
			claimed++
			taken = append(taken, k)
		}
		return nil
	})
	n.metrics.Claimed(claimed)
	if n.claimed != nil && len(taken) > 0 {
		n.claimed(n.inShards(taken...))
	}
	if err != nil {
		return err
	}
	n.log.Info("cluster: shards claimed", "member", m.ID(), "claimed", claimed, "sessions", adopted)
	if adopted > 0 {
		go func() {
			deadline := time.Now().Add(takeoverWatch)
			for n.manager.Restoring() > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
				time.Sleep(50 * time.Millisecond)
			}
			n.metrics.ObserveTakeover(time.Since(start))
		}()
	}
	return nil
}

// handOver gives shard k to the replica it is now assigned to: the session layer and the delivery
// stop acting for it, its sessions' queued events reach the delivery (the outbox), their clients
// disconnect, the registry is flushed, the delivery's sends in progress settle (its later steps
// leave the shard's entries to the next holder), and the shard is released; its new holder claims
// it at epoch+1 and adopts its undelivered entries, none of them being sent here any more.
func (n *clusterNode) handOver(ctx context.Context, m *cluster.Member, k int) error {
	epoch, ok := m.HeldEpoch(k)
	if !ok {
		return nil
	}
	n.setMoving(k, true)
	dropped, err := n.manager.Drop(ctx, n.inShards(k), true)
	if err != nil {
		// Released anyway: the sessions are no longer run here, and a held shard without them
		// would let a start begin one from nothing. Queued events still go out (their versions
		// are below the successor's); the successor may read an older registry record.
		n.log.Warn("cluster: handing a shard over without a complete flush", "shard", k, "err", err)
	}
	if n.settle != nil {
		if err := n.settle(ctx); err != nil {
			// Released anyway (the round's bound): a batch of the shard still being sent here may
			// reach Laravel from both holders (at least once).
			n.log.Warn("cluster: handing a shard over while the delivery is still sending", "shard", k, "err", err)
		}
	}
	if err := m.Release(ctx, k, epoch); err != nil {
		// Still moving: nothing may start here for the shard until a later round releases it
		// (or it is lost, or claimed again, which clears the mark).
		return err
	}
	n.setMoving(k, false)
	n.metrics.HandedOver()
	n.log.Debug("cluster: shard handed over", "shard", k, "epoch", epoch, "sessions", dropped)
	return nil
}

// setMoving marks shard k as being handed over (the session layer does not act for it) or not.
func (n *clusterNode) setMoving(k int, moving bool) {
	n.movingMu.Lock()
	defer n.movingMu.Unlock()
	if moving {
		n.moving[k] = true
	} else {
		delete(n.moving, k)
	}
}

// stop ends the rebalancer and the lease renewals (Shutdown, before the session layer closes).
func (n *clusterNode) stop() {
	if n.cancel != nil {
		n.cancel()
	}
	n.done.Wait()
	n.memberDone.Wait()
}

// leave ends the lease (after the session layer closed and flushed and the delivery closed): the
// shards wait for this replica's restart for the restart grace (a rolling update moves each
// session once, to the restarted replica), then, or at once without a grace, the other replicas
// claim them, without waiting for the lease to end.
func (n *clusterNode) leave(ctx context.Context) error {
	n.ready.Store(false)
	m := n.member.Load()
	if m == nil || m.Err() != nil {
		return nil
	}
	if err := m.LeaveReturning(ctx, n.grace); err != nil {
		return fmt.Errorf("app: %w", err)
	}
	return nil
}

// locator is the API's Locator: the cluster node in cluster mode, nil (serve everything here)
// otherwise.
func (a *App) locator() api.Locator {
	if a.node == nil {
		return nil
	}
	return a.node
}

// readyCheck is /readyz's cluster check: ready once joined and the first claims are made, never
// again once drained.
func (n *clusterNode) readyCheck(context.Context) error {
	if n.draining.Load() {
		return errors.New("cluster: drained: this replica holds no shard and claims none; stop it")
	}
	if !n.ready.Load() {
		return errors.New("cluster: not a member with its first shards claimed yet")
	}
	return nil
}

// clusterView is GET /cluster's answer.
type clusterView struct {
	Me      clusterMe            `json:"me"`
	Shards  int                  `json:"shards"`
	Members []clusterMember      `json:"members"`
	Table   []cluster.ShardState `json:"table"`
}

type clusterMe struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Addr        string `json:"addr"`
	Ready       bool   `json:"ready"`
	ShardsHeld  int    `json:"shards_held"`
	SessionsRun int    `json:"sessions"`
	Drained     bool   `json:"drained,omitempty"`
}

type clusterMember struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	Addr           string    `json:"addr"`
	LeaseExpiresAt time.Time `json:"lease_expires_at"`
	ShardsHeld     int       `json:"shards_held"`
}

// route is GET /cluster: the live members with their shard counts, every shard's holder and
// epoch, and this replica's own view (authenticated like the other routes).
func (n *clusterNode) route() api.Route {
	return api.Route{Pattern: "GET /cluster", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		members, table, err := n.store.Snapshot(r.Context())
		if err != nil {
			http.Error(w, `{"error":"cluster state unavailable"}`, http.StatusServiceUnavailable)
			return
		}
		count := map[string]int{}
		for _, s := range table {
			if s.Holder != "" {
				count[s.Holder]++
			}
		}
		v := clusterView{Shards: n.store.Shards(), Table: table, Members: make([]clusterMember, 0, len(members))}
		if m := n.member.Load(); m != nil {
			v.Me = clusterMe{ID: m.ID(), Name: m.Name(), Addr: n.addr, Ready: n.ready.Load(), ShardsHeld: m.HeldCount(),
				Drained: n.draining.Load()}
		}
		if n.manager != nil {
			byStatus, _ := n.manager.Counts()
			for _, c := range byStatus {
				v.Me.SessionsRun += c
			}
		}
		for _, m := range members {
			v.Members = append(v.Members, clusterMember{ID: m.ID, Name: m.Name, Addr: m.Addr, LeaseExpiresAt: m.Expiry.UTC(), ShardsHeld: count[m.ID]})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	})}
}

// registryFenced counts the registry writes the conditional upsert refused.
func registryFenced(cm *metrics.ClusterMetrics) func(storage.Record) {
	return func(storage.Record) { cm.FencedWrite(metrics.FencedRegistryRefused) }
}
