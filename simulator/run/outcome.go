package run

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"wagate/reports"
	"wagate/simulator/truth"
)

// OutcomeFile is the run output that holds what a verdict on delivery needs beyond report.json:
// the sessions whose final states disagree and the gateway's dead letters (the chaos campaign
// reads it).
const OutcomeFile = "outcome.json"

// Outcome is the content of outcome.json.
type Outcome struct {
	// Sessions, Lost, Stale and GatewayMismatches are the ground truth's counts (truth.Truth).
	Sessions          int64 `json:"sessions"`
	Lost              int64 `json:"lost"`
	Stale             int64 `json:"stale"`
	GatewayMismatches int64 `json:"gateway_mismatches"`
	// Mismatches names a few sessions that were lost, stale or mismatched, and how.
	Mismatches []string `json:"mismatches,omitempty"`
	// GatewayAnswered is false when the gateway could not say its sessions' states at the end.
	GatewayAnswered bool `json:"gateway_answered"`
	// DeadLetters are the gateway's dead letters at the end (batch mode; oldest first).
	DeadLetters []DeadLetter `json:"dead_letters,omitempty"`
	// DeadLettersError says why the dead letters could not be read ("" when they were).
	DeadLettersError string `json:"dead_letters_error,omitempty"`
	// GatewayDied is true when the gateway process exited on its own during the run.
	GatewayDied bool `json:"gateway_died,omitempty"`
	// Messages is the customers' messages' ground truth (runs where customers wrote).
	Messages *truth.MessagesTruth `json:"messages,omitempty"`
}

// DeadLetter is one event the gateway gave up on.
type DeadLetter struct {
	SessionID string `json:"session_id"`
	Kind      string `json:"kind"`
	Version   int64  `json:"version"`
	Reason    string `json:"reason"`
}

// deadLetterLimit is the most dead letters read at the end of a run (10 pages of the gateway's
// largest page).
const deadLetterLimit = 10_000

// deadLetters reads the gateway's dead-letter stream (GET /dead-letters, oldest first, page by
// page through next_cursor, at most deadLetterLimit).
func (r *runner) deadLetters(ctx context.Context) ([]DeadLetter, error) {
	var out []DeadLetter
	cursor := ""
	for len(out) < deadLetterLimit {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/dead-letters?limit=1000&after=%s", r.w.gatewayURL, cursor), nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+r.w.gatewayToken)
		resp, err := r.hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("GET /dead-letters: %w", err)
		}
		var body struct {
			DeadLetters []struct {
				SessionID string `json:"session_id"`
				Kind      string `json:"kind"`
				Version   int64  `json:"version"`
				Reason    string `json:"reason"`
			} `json:"dead_letters"`
			NextCursor string `json:"next_cursor"`
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return nil, fmt.Errorf("GET /dead-letters: %s", resp.Status)
		}
		err = json.NewDecoder(io.LimitReader(resp.Body, 32<<20)).Decode(&body)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("GET /dead-letters: %w", err)
		}
		for _, d := range body.DeadLetters {
			out = append(out, DeadLetter{SessionID: d.SessionID, Kind: d.Kind, Version: d.Version, Reason: d.Reason})
		}
		if body.NextCursor == "" {
			break
		}
		cursor = body.NextCursor
	}
	return out, nil
}

// writeOutcome writes outcome.json from the ground truth and the gateway's dead letters (read
// now, batch mode only).
func (r *runner) writeOutcome(ctx context.Context, t truth.Truth, gatewayAnswered bool) error {
	o := Outcome{Sessions: t.Sessions, Lost: t.Lost, Stale: t.Stale, GatewayMismatches: t.GatewayMismatches,
		Mismatches: t.Mismatches, GatewayAnswered: gatewayAnswered, GatewayDied: r.gatewayDied.Load()}
	if mt, ok := r.phones.messages.Result(); ok && mt.Written > 0 {
		o.Messages = &mt
	}
	if r.f.Gateway.Mode == "batch" && !o.GatewayDied {
		dls, err := r.deadLetters(ctx)
		if err != nil {
			o.DeadLettersError = err.Error()
		}
		o.DeadLetters = dls
	}
	b, err := json.MarshalIndent(o, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(r.o.Out, OutcomeFile), append(b, '\n'), 0o644)
}

// ReadOutcome reads dir/outcome.json.
func ReadOutcome(dir string) (Outcome, error) {
	var o Outcome
	b, err := os.ReadFile(filepath.Join(dir, OutcomeFile))
	if err != nil {
		return o, err
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return o, fmt.Errorf("%s: %w", OutcomeFile, err)
	}
	return o, nil
}

// ReadFaultTimeline reads dir/faults.json (an empty timeline when the run had no faults).
func ReadFaultTimeline(dir string) (FaultTimeline, error) { return reports.ReadFaultTimeline(dir) }
