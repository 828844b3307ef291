package run

// The ground truth after the drain: Laravel's final states compared with the gateway's, and
// Laravel's applications beyond the gateway's events.

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"wagate/gateway/laravel"
	"wagate/simulator/truth"
	"wagate/simulator/user"
)

// groundTruth waits for Laravel to show the gateway's final states (Converge) and judges every
// session (Finish); end is when it stopped watching, gatewayAnswered whether the gateway told its
// final states.
func (r *runner) groundTruth(ctx context.Context) (end time.Time, t truth.Truth, gatewayAnswered bool) {
	_ = r.phones.poll(ctx)
	gatewayStates, err := r.ledger.Converge(ctx, r.gatewayStates, r.laravel.poll, convergeLimit)
	if err != nil {
		r.log.Warn("final Laravel state", "err", err)
	}
	end = time.Now()
	t = r.ledger.Finish(gatewayStates, end)
	r.judgeMessages(ctx)
	for _, m := range t.Mismatches {
		r.log.Warn("ground truth", "mismatch", m)
	}
	return end, t, gatewayStates != nil
}

// convergeLimit bounds how long the end of a run waits for Laravel to show the gateway's final
// states (and for the gateway to reach what the simulation caused) before judging them.
const convergeLimit = 30 * time.Second

// outcomeLimit bounds the reads of the run's outcome after the ground truth (the gateway's dead
// letters, Laravel's duplicate applications).
const outcomeLimit = 30 * time.Second

// gatewayStates asks the gateway for the final status and version of sessions ids (nil when it
// cannot answer); it is the ground truth's truth.ReadGateway.
func (r *runner) gatewayStates(ctx context.Context, ids []string) map[string]truth.State {
	if r.gatewayDied.Load() {
		return nil
	}
	out := make(map[string]truth.State, len(ids))
	var mu sync.Mutex
	work := make(chan string)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for id := range work {
				st, err := r.gatewayStatus(ctx, id)
				if err == nil && st.Status != "" {
					mu.Lock()
					out[id] = st
					mu.Unlock()
				}
			}
		})
	}
	for _, id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()
	if len(out) == 0 {
		return nil
	}
	return out
}

// gatewayStatus reads one session's status and the version of its latest event (GET /sessions/{id}).
func (r *runner) gatewayStatus(ctx context.Context, id string) (truth.State, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.w.gatewayURL+"/sessions/"+url.PathEscape(id), nil)
	if err != nil {
		return truth.State{}, err
	}
	req.Header.Set("Authorization", "Bearer "+r.w.gatewayToken)
	resp, err := r.hc.Do(req)
	if err != nil {
		return truth.State{}, err
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return truth.State{}, err
	}
	st := truth.State{Status: laravel.Status(user.StatusOf(user.Response{Status: resp.StatusCode, Body: body}))}
	if v, ok := body["version"].(float64); ok {
		st.Version = int64(v)
	}
	return st, nil
}

// duplicates compares what Laravel applied with what the gateway emitted: Laravel applying more
// items than the gateway produced events means some were applied twice. -1 when the gateway
// does not expose its event count.
func (r *runner) duplicates(ctx context.Context) int64 {
	if !r.measureLaravel || !r.measureGateway {
		return -1
	}
	emitted, _ := r.scrapeGateway(ctx) // every replica's, in cluster mode
	if offset, known := r.emittedOffset(); !known {
		return -1 // a stopped gateway process's count is missing: any difference would be made up
	} else if emitted >= 0 {
		emitted += offset // gateway processes stopped by process faults
	}
	st, err := r.w.admin.GetStatsRecent(ctx, 0)
	if err != nil || emitted < 0 {
		return -1
	}
	var applied int64
	for _, e := range st.Endpoints {
		applied += e.Updated
	}
	if d := applied - int64(emitted); d > 0 {
		return d
	}
	return 0
}
