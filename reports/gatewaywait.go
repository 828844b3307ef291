package reports

import (
	"fmt"
	"strings"
)

// SchedWaitLimitMs is the goroutine wait GatewayWait counts the share above: the status API's
// 10 ms target, so a share of 1% or more of the gateway's waits beyond it can alone put a
// request's p99 over the target.
const SchedWaitLimitMs = 10

// GatewayWait sets the client's status API p99 beside the two parts of it the gateway measures
// itself: its handler's time (wagate_api_request_duration_seconds) and how long its goroutines
// waited for a CPU (wagate_go_sched_latency_seconds, the Go runtime's /sched/latencies). All
// three are read over the same run; the gateway's figures are bucket upper bounds.
type GatewayWait struct {
	// ClientP99Ms is http_req_duration{endpoint:status} at p99.
	ClientP99Ms float64 `json:"client_p99_ms"`
	// HandlerP99Ms is the gateway's own time for the status reads at p99.
	HandlerP99Ms float64 `json:"handler_p99_ms"`
	// SchedP99Ms is the gateway's goroutines' wait to run at p99, and SchedOverLimitPercent the
	// share of their waits longer than SchedWaitLimitMs.
	SchedP99Ms            float64 `json:"sched_wait_p99_ms"`
	SchedOverLimitPercent float64 `json:"sched_wait_over_10ms_percent"`
	// Dominant is the part that dominates the client's p99 (DominantPart).
	Dominant WaitPart `json:"dominant"`
}

// IntervalWait is GatewayWait's gateway side over one series interval (the client's p99 is the
// point's APILatency.P99, every polled endpoint).
type IntervalWait struct {
	HandlerP99Ms          float64 `json:"handler_p99_ms"`
	SchedP99Ms            float64 `json:"sched_wait_p99_ms"`
	SchedOverLimitPercent float64 `json:"sched_wait_over_10ms_percent"`
}

// WaitPart names a part of the client's latency.
type WaitPart string

const (
	// PartHandler is the gateway's handler: the work of answering a request.
	PartHandler WaitPart = "handler"
	// PartGatewayCPU is the gateway's goroutines waiting runnable for a CPU.
	PartGatewayCPU WaitPart = "gateway_cpu_wait"
	// PartOutside is the rest of the client's p99: the client's own queueing (its goroutines,
	// its connection pool), the network, and the gateway's socket work before its handler.
	PartOutside WaitPart = "outside_gateway"
)

// DominantPart decides which part dominates a client's p99: the handler's p99, the gateway's
// goroutine wait p99, or what the client's p99 leaves beyond both (never below zero). The
// largest part dominates; of equal parts the gateway's are named first (handler, then its wait
// for a CPU). "" when the client's p99 is unknown (zero).
func DominantPart(clientP99, handlerP99, schedP99 float64) (part WaitPart, outside float64) {
	if clientP99 <= 0 {
		return "", 0
	}
	outside = max(clientP99-handlerP99-schedP99, 0)
	part = PartHandler
	largest := handlerP99
	if schedP99 > largest {
		part, largest = PartGatewayCPU, schedP99
	}
	if outside > largest {
		part = PartOutside
	}
	return part, outside
}

// says is the sentence the latency-validity block ends with.
func (p WaitPart) says() string {
	switch p {
	case PartHandler:
		return "the gateway's handler dominates"
	case PartGatewayCPU:
		return "the gateway's goroutines' wait for its CPU dominates"
	case PartOutside:
		return "what lies outside the gateway dominates (the client's queueing, the network)"
	}
	return ""
}

// text says which part dominates the client's p99, with the three figures, for report.md.
func (w *GatewayWait) text() string {
	_, outside := DominantPart(w.ClientP99Ms, w.HandlerP99Ms, w.SchedP99Ms)
	return fmt.Sprintf("status API p99 at the client %s ms: the gateway's handler at most %s ms at p99, its goroutines waited for a CPU at most %s ms at p99 (%s%% of their waits over %d ms), %s ms outside both: %s",
		formatValue(w.ClientP99Ms, ""), formatValue(w.HandlerP99Ms, ""), formatValue(w.SchedP99Ms, ""),
		formatValue(w.SchedOverLimitPercent, ""), SchedWaitLimitMs, formatValue(outside, ""), w.Dominant.says())
}

// intervalWaitLine lists the series' intervals that carry the gateway's side: at each interval's
// end, the client's p99 / the handler's p99 / the goroutine wait p99 (ms) and the share of waits
// over the limit; "" when none does.
func intervalWaitLine(series []SeriesPoint) string {
	var parts []string
	for _, p := range series {
		w := p.GatewayWait
		if w == nil {
			continue
		}
		client := "—" // no client requests in the interval (the drain)
		if p.APILatency.P99 > 0 {
			client = formatValue(p.APILatency.P99, "")
		}
		parts = append(parts, fmt.Sprintf("%s s: %s / %s / %s, %s%%", formatValue(p.Elapsed.Std().Seconds(), ""),
			client, formatValue(w.HandlerP99Ms, ""), formatValue(w.SchedP99Ms, ""), formatValue(w.SchedOverLimitPercent, "")))
	}
	if len(parts) == 0 {
		return ""
	}
	return fmt.Sprintf("by series interval (at its end: client p99 / handler p99 / gateway goroutine wait p99 in ms, share of waits over %d ms): ", SchedWaitLimitMs) +
		strings.Join(parts, "; ")
}
