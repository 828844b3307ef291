package run

import (
	"context"
	"time"

	"wagate/simulator/metrics"
	"wagate/simulator/scenario"
)

// takeoverGrace is how long after a replica's SIGKILL the takeover watch waits before its first
// look: the killed process's connections close with it, fakewa sees them end within milliseconds
// and the phones read its event log every 100 ms.
const takeoverGrace = time.Second

// watchTakeover measures replica_takeover_time after a replica's SIGKILL: from the signal until
// every device that was online before it and went offline with it (the sessions the replica held)
// is connected again (fakewa's connect times), and counts those devices in
// replica_takeover_sessions. Issue 16 bounds it for a SIGKILL by 15 s + 2 s per 1000 sessions.
// When the killed replica restarts before the survivors took every session (the fault's duration
// is shorter than the takeover), the time includes the restart; the log says so.
func (r *runner) watchTakeover(flt scenario.Fault, before []string, killed time.Time) {
	r.rec.init()
	r.rec.wg.Go(func() { r.takeoverSince(r.rec.ctx, flt, before, killed) })
}

func (r *runner) takeoverSince(ctx context.Context, flt scenario.Fault, before []string, killed time.Time) {
	tags := metrics.Tags{"fault": flt.Name}
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			dropped, back, _ := r.phones.TakenOver(before, killed)
			if dropped > 0 {
				r.log.Warn("replica's sessions not all taken over by the end of the drain", "fault", flt.Name, "sessions", dropped, "back", back,
					"since_kill", time.Since(killed).Round(time.Millisecond))
				r.reg.ObserveDuration("replica_takeover_time", time.Since(killed), tags)
				r.reg.Add("replica_takeover_sessions", float64(dropped), tags)
			}
			return
		case <-t.C:
		}
		if time.Since(killed) < takeoverGrace {
			continue
		}
		dropped, back, last := r.phones.TakenOver(before, killed)
		if dropped == 0 {
			r.log.Info("the killed replica held no connected session", "fault", flt.Name)
			return
		}
		if back < dropped {
			continue
		}
		took := max(last.Sub(killed), 0)
		restarted := took > flt.Duration.Std()
		r.log.Info("replica's sessions taken over", "fault", flt.Name, "sessions", dropped, "takeover", took.Round(time.Millisecond),
			"after_its_restart", restarted)
		r.reg.ObserveDuration("replica_takeover_time", took, tags)
		r.reg.Add("replica_takeover_sessions", float64(dropped), tags)
		return
	}
}
