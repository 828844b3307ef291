package whatsapp

import (
	"fmt"
	"time"

	"go.mau.fi/whatsmeow"
)

// TestKeepaliveWarning is logged (and listed among the gateway's warnings) when a test-only
// keepalive timing is in force.
const TestKeepaliveWarning = "INSECURE TEST SETTING: whatsmeow's keepalive is shortened for a fake WhatsApp server"

// MinTestKeepalive and MaxTestKeepalive bound the test-only keepalive interval: shorter would
// ping a loaded machine into false failures, longer is whatsmeow's own timing.
const (
	MinTestKeepalive = 100 * time.Millisecond
	MaxTestKeepalive = 20 * time.Second
)

// KeepaliveTiming is whatsmeow's keepalive timing (package variables of go.mau.fi/whatsmeow,
// keepalive.go): a ping every IntervalMin to IntervalMax, one unanswered after Deadline fails,
// and failures for longer than MaxFail make the connection dead (keepaliveDead: the gateway
// drops it and the session connects again).
type KeepaliveTiming struct {
	IntervalMin, IntervalMax, Deadline, MaxFail time.Duration
}

// ScaledKeepaliveTiming is whatsmeow's timing (20-30 s pings, a 10 s deadline, dead after 3 min)
// scaled so that pings come every interval to 1.5 intervals: the deadline is half an interval
// and a connection is dead after 9 intervals of failures, so a fake WhatsApp's silence is noticed
// in seconds (a 500 ms interval: dead after 4.5 s). It is a pure function.
func ScaledKeepaliveTiming(interval time.Duration) KeepaliveTiming {
	return KeepaliveTiming{IntervalMin: interval, IntervalMax: interval * 3 / 2, Deadline: interval / 2, MaxFail: 9 * interval}
}

// checkTestKeepalive refuses an interval outside [MinTestKeepalive, MaxTestKeepalive].
func checkTestKeepalive(interval time.Duration) error {
	if interval < MinTestKeepalive || interval > MaxTestKeepalive {
		return fmt.Errorf("whatsapp: test keepalive interval %s must be between %s and %s", interval, MinTestKeepalive, MaxTestKeepalive)
	}
	return nil
}

// applyProcessWide sets whatsmeow's package variables to t for every client of the process. Call
// it before any client connects: whatsmeow's keepalive loops read them without a lock.
func (t KeepaliveTiming) applyProcessWide() {
	whatsmeow.KeepAliveIntervalMin = t.IntervalMin
	whatsmeow.KeepAliveIntervalMax = t.IntervalMax
	whatsmeow.KeepAliveResponseDeadline = t.Deadline
	whatsmeow.KeepAliveMaxFailTime = t.MaxFail
}
