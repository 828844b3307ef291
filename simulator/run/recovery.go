package run

import (
	"context"
	"sync"
	"time"

	"wagate/simulator/metrics"
	"wagate/simulator/scenario"
)

// outboxSlack is how far above its depth before a fault the outbox may be and count as recovered
// (the normal traffic of a batch interval).
const outboxSlack = 10

// recoveryWatch measures fault_recovery_time: from a fault's end until the gateway answers
// /healthz, its outbox holds at most outboxSlack entries more than before the fault and, after
// faults that disconnect sessions (drop, restart, gateway restarts), 90% of the sessions online
// before the fault are online again, among those that can come back (a session its user logged
// out meanwhile, or whose stream was replaced, does not).
type recoveryWatch struct {
	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (rw *recoveryWatch) init() {
	rw.once.Do(func() { rw.ctx, rw.cancel = context.WithCancel(context.Background()) })
}

// faultBaseline is what the gateway looked like just before a fault.
type faultBaseline struct {
	outbox float64  // -1 when unknown (legacy mode)
	online []string // the devices online
}

// baseline samples the outbox depth and the online sessions now.
func (r *runner) baseline(ctx context.Context) faultBaseline {
	_, ob := r.scrapeGateway(ctx)
	return faultBaseline{outbox: ob, online: r.phones.OnlineJIDs()}
}

// reconnects reports whether a fault disconnects sessions that come back by themselves.
func reconnects(flt scenario.Fault) bool {
	if flt.Process != nil {
		switch flt.Process.Action {
		case scenario.ProcessGatewayKill, scenario.ProcessGatewayTerm, scenario.ProcessGatewayRollingRestart,
			scenario.ProcessRedisRestartGatewayDown:
			return true
		}
		return false
	}
	if flt.WhatsApp == nil {
		return false
	}
	switch flt.WhatsApp.Action {
	case "drop", "restart", "down", "silent", "handshake-cut":
		return true
	}
	return false
}

// watchFrom follows a fault's recovery from its measured end (the heal).
func (r *runner) watchFrom(flt scenario.Fault, b faultBaseline, end time.Time) {
	r.rec.init()
	r.rec.wg.Go(func() { r.recoverySince(r.rec.ctx, flt, b, end) })
}

// recoverySince polls every 200 ms until the gateway has recovered from flt (ended at end) and
// records fault_recovery_time; when the watch is stopped first (the drain ended), it records the
// time until then. After a fault that disconnects sessions it also records
// fault_sessions_back_time, the part of the recovery until 90% of them are online again at
// WhatsApp: the rest is the gateway telling Laravel (its outbox catching up).
func (r *runner) recoverySince(ctx context.Context, flt scenario.Fault, b faultBaseline, end time.Time) {
	tags := metrics.Tags{"fault": flt.Name}
	sessionsBack := !reconnects(flt) // nothing to wait for: not recorded
	var backAfter time.Duration
	back := func() bool {
		if sessionsBack {
			return true
		}
		online, expected := r.phones.Back(b.online, r.ledger.LoggedOut())
		if float64(online) < 0.9*float64(expected) {
			return false
		}
		sessionsBack, backAfter = true, max(time.Since(end), 0)
		r.reg.ObserveDuration("fault_sessions_back_time", backAfter, tags)
		return true
	}
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			r.log.Warn("fault not recovered by the end of the drain", "fault", flt.Name, "since_end", time.Since(end).Round(time.Millisecond),
				"offline", r.phones.Missing(b.online, r.ledger.LoggedOut()))
			if !sessionsBack {
				backAfter = time.Since(end)
				r.reg.ObserveDuration("fault_sessions_back_time", backAfter, tags)
			}
			r.reg.ObserveDuration("fault_recovery_time", time.Since(end), tags)
			r.noteRecovery(flt.Name, recovery{took: time.Since(end), sessionsBack: backAfter})
			return
		case <-t.C:
		}
		if r.gatewayRestarting() || !back() {
			continue
		}
		hctx, cancel := context.WithTimeout(ctx, time.Second)
		healthy := httpOK(hctx, r.hc, r.w.gatewayURL+"/healthz", r.w.gatewayToken) == nil
		cancel()
		if !healthy {
			continue
		}
		if b.outbox >= 0 {
			if _, ob := r.scrapeGateway(ctx); ob < 0 || ob > b.outbox+outboxSlack {
				continue
			}
		}
		d := max(time.Since(end), 0)
		r.log.Info("fault recovered", "fault", flt.Name, "recovery", d.Round(time.Millisecond))
		r.reg.ObserveDuration("fault_recovery_time", d, tags)
		r.noteRecovery(flt.Name, recovery{took: d, recovered: true, sessionsBack: backAfter})
		return
	}
}

// recovery is one fault's measured recovery.
type recovery struct {
	took      time.Duration
	recovered bool
	// sessionsBack is when 90% of the sessions were online at WhatsApp again (0: the fault
	// disconnected none).
	sessionsBack time.Duration
}

// noteRecovery keeps a fault's recovery for faults.json.
func (r *runner) noteRecovery(name string, rc recovery) {
	r.proc.mu.Lock()
	defer r.proc.mu.Unlock()
	if r.proc.recoveries == nil {
		r.proc.recoveries = map[string]recovery{}
	}
	r.proc.recoveries[name] = rc
}

// finishRecoveries stops the watches still running (at the end of the drain) and waits for them.
// The watches poll every 200 ms, so each first gets a last look at what the drain waited for (an
// outbox that emptied at the drain's very end): without it a fault recovered at that moment was
// judged not recovered (chaos seed 1, schedule 0: a 410 window, the outbox empty 3.4 s into the
// wait, the watch cancelled in the same millisecond).
func (r *runner) finishRecoveries() {
	r.rec.init()
	settled := make(chan struct{})
	go func() { r.rec.wg.Wait(); close(settled) }()
	t := time.NewTimer(recoveryLastLook)
	select {
	case <-settled:
	case <-t.C:
	}
	t.Stop()
	r.rec.cancel()
	r.rec.wg.Wait()
}

// recoveryLastLook is how long finishRecoveries lets the watches look once more: a few polls and
// a health check.
const recoveryLastLook = 1500 * time.Millisecond
