package reports

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// FaultsFile is the run output listing every fault of the schedule with the time it was in effect
// (faults.json), for per-fault figures (benchmarks/cmd/faults-report).
const FaultsFile = "faults.json"

// FaultWindow is one fault of a run: when it began and when it ended. For process faults the
// end is measured (the process answers again); for the others it is the scheduled end.
type FaultWindow struct {
	Name string `json:"name"`
	// Kind is laravel, whatsapp or process; Action the WhatsApp or process action.
	Kind   string    `json:"kind"`
	Action string    `json:"action,omitempty"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	// Detail says what happened (e.g. "SIGKILL pid 123; restarted as pid 456 in 1.2s").
	Detail string `json:"detail,omitempty"`
	// Error is set when the fault could not be applied as asked.
	Error string `json:"error,omitempty"`
	// EmittedBefore is the gateway's emitted-events counter scraped just before it was stopped.
	EmittedBefore float64 `json:"emitted_before,omitempty"`
	// OutboxBefore is the outbox depth scraped just before the fault (undelivered events).
	OutboxBefore float64 `json:"outbox_before,omitempty"`
	// RecoveryMS is the fault's fault_recovery_time (from End), in milliseconds; Recovered is
	// false when the gateway had not recovered by the end of the drain (RecoveryMS runs until then).
	RecoveryMS float64 `json:"recovery_ms,omitempty"`
	Recovered  bool    `json:"recovered,omitempty"`
	// SessionsBackMS is, after a fault that disconnected sessions, when 90% of them were online at
	// WhatsApp again (fault_sessions_back_time, from End, in milliseconds): the part of RecoveryMS
	// before the gateway's outbox caught up with what it had to tell Laravel.
	SessionsBackMS float64 `json:"sessions_back_ms,omitempty"`
}

// FaultTimeline is the content of faults.json.
type FaultTimeline struct {
	// UsersStart is when the users started (fault times count from it).
	UsersStart time.Time     `json:"users_start"`
	Faults     []FaultWindow `json:"faults"`
}

// ReadFaultTimeline reads dir's faults.json; a run without faults has none and reads as empty.
func ReadFaultTimeline(dir string) (FaultTimeline, error) {
	var tl FaultTimeline
	b, err := os.ReadFile(filepath.Join(dir, FaultsFile))
	if os.IsNotExist(err) {
		return tl, nil
	}
	if err != nil {
		return tl, err
	}
	if err := json.Unmarshal(b, &tl); err != nil {
		return tl, fmt.Errorf("%s: %w", FaultsFile, err)
	}
	return tl, nil
}
