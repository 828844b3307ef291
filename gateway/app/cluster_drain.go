package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"wagate/gateway/api"
)

// A drain (POST /cluster/drain) is a scale-down's explicit leave: this replica hands every shard
// over at once, the way a SIGTERM does, but leaves as a replica that does not return (no restart
// grace), so the other replicas claim its shards at their next round. The process keeps running
// as a drained non-member: it holds and claims nothing, forwards the requests it still receives,
// and is not ready; a SIGTERM then stops it with nothing left to hand over. Nothing inside a pod
// tells a rolling update's SIGTERM from a scale-down's, so the operator says which (docs/cluster.md).

// drainRun is one drain: its outcome once done is closed.
type drainRun struct {
	done   chan struct{}
	result drainResult
	err    error
}

// drainResult is POST /cluster/drain's answer.
type drainResult struct {
	Drained bool   `json:"drained"`
	Member  string `json:"member"` // the incarnation that left
	// ShardsReleased and SessionsHandedOver are what the drain handed over.
	ShardsReleased     int   `json:"shards_released"`
	SessionsHandedOver int   `json:"sessions_handed_over"`
	TookMillis         int64 `json:"took_ms"`
}

// drain hands every shard over and leaves without a restart grace; it returns when that is done
// or ctx ends (the drain itself goes on, bounded by drainTimeout). A drain asked for again, while
// it runs or after it succeeded, answers the same outcome; one asked for after a failed drain
// tries again.
func (n *clusterNode) drain(ctx context.Context) (drainResult, error) {
	n.drainMu.Lock()
	run := n.drainRun
	if run == nil || (isClosed(run.done) && run.err != nil) {
		run = &drainRun{done: make(chan struct{})}
		n.drainRun = run
		go func() {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.drainTimeout)
			defer cancel()
			run.result, run.err = n.drainOnce(dctx)
			close(run.done)
		}()
	}
	n.drainMu.Unlock()
	select {
	case <-run.done:
		return run.result, run.err
	case <-ctx.Done():
		return drainResult{}, fmt.Errorf("app: waiting for the drain: %w", ctx.Err())
	}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// drainOnce is the drain: with no round running, its shards are marked moving (nothing is started
// or emitted for them here any more), their sessions' queued events reach the delivery, their
// clients disconnect and the registry is flushed (Manager.Drop with flush, as a handover), the
// delivery's sends in progress settle, the lease renewals stop, and the member leaves, releasing
// every shard at once without a restart grace. The next rounds of the other replicas (<= 1 s)
// claim them at epoch+1 and connect their sessions: one login per session.
func (n *clusterNode) drainOnce(ctx context.Context) (drainResult, error) {
	start := time.Now()
	n.roundMu.Lock()
	defer n.roundMu.Unlock()
	n.draining.Store(true)
	n.ready.Store(false)
	m := n.member.Load()
	if m == nil {
		return drainResult{}, errors.New("app: drain: this replica is not a member")
	}
	held := m.HeldShards()
	for _, k := range held {
		n.setMoving(k, true)
	}
	n.log.Info("cluster: draining: handing every shard over, not returning", "member", m.ID(), "shards", len(held))
	dropped, err := n.manager.Drop(ctx, n.inShards(held...), true)
	if err != nil {
		// Left anyway, as a handover whose flush did not finish releases the shard.
		n.log.Warn("cluster: draining without a complete flush", "err", err)
	}
	if n.settle != nil {
		if err := n.settle(ctx); err != nil {
			n.log.Warn("cluster: draining while the delivery is still sending", "err", err)
		}
	}
	// No renewal and no rejoin from here: the membership ends with the leave.
	if n.memberCancel != nil {
		n.memberCancel()
	}
	n.memberDone.Wait()
	m = n.member.Load() // a fence may have ended the incarnation read above
	if err := m.Leave(ctx); err != nil {
		return drainResult{}, fmt.Errorf("app: drain: %w", err)
	}
	for _, k := range held {
		n.setMoving(k, false)
		n.metrics.HandedOver()
	}
	n.metrics.SetHeld(0)
	res := drainResult{Drained: true, Member: m.ID(), ShardsReleased: len(held), SessionsHandedOver: dropped,
		TookMillis: time.Since(start).Milliseconds()}
	n.log.Info("cluster: drained: every shard released, not returning; stop this replica", "member", m.ID(),
		"shards", len(held), "sessions", dropped, "took", time.Since(start).Round(time.Millisecond))
	return res, nil
}

// drainRoute is POST /cluster/drain, authenticated like the other routes. node is nil outside
// cluster mode, where the route answers 409: a single gateway has no replica to hand over to.
func drainRoute(node *clusterNode) api.Route {
	return api.Route{Pattern: "POST /cluster/drain", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if node == nil {
			api.WriteError(w, http.StatusConflict, "not_in_cluster_mode",
				"this gateway does not run in cluster mode (WAGATE_CLUSTER): there is no other replica to hand its sessions to; stop it with SIGTERM")
			return
		}
		res, err := node.drain(r.Context())
		if err != nil {
			api.WriteError(w, http.StatusServiceUnavailable, "drain_failed", err.Error()+"; ask again to retry")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(res)
	})}
}
