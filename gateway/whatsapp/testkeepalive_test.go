package whatsapp

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"

	"wagate/gateway/storage"
	"wagate/gateway/wadial"
)

// The test-only keepalive scales whatsmeow's own timing (pings every 20-30 s, a 10 s deadline,
// dead after 3 min of failures) down to one interval.
func TestTheTestKeepaliveScalesWhatsmeowsOwnTiming(t *testing.T) {
	for _, c := range []struct {
		interval time.Duration
		want     KeepaliveTiming
	}{
		{20 * time.Second, KeepaliveTiming{IntervalMin: 20 * time.Second, IntervalMax: 30 * time.Second, Deadline: 10 * time.Second, MaxFail: 3 * time.Minute}},
		{time.Second, KeepaliveTiming{IntervalMin: time.Second, IntervalMax: 1500 * time.Millisecond, Deadline: 500 * time.Millisecond, MaxFail: 9 * time.Second}},
		{500 * time.Millisecond, KeepaliveTiming{IntervalMin: 500 * time.Millisecond, IntervalMax: 750 * time.Millisecond, Deadline: 250 * time.Millisecond, MaxFail: 4500 * time.Millisecond}},
		{MinTestKeepalive, KeepaliveTiming{IntervalMin: 100 * time.Millisecond, IntervalMax: 150 * time.Millisecond, Deadline: 50 * time.Millisecond, MaxFail: 900 * time.Millisecond}},
	} {
		t.Run(c.interval.String(), func(t *testing.T) {
			got := ScaledKeepaliveTiming(c.interval)
			if got != c.want {
				t.Fatalf("ScaledKeepaliveTiming(%s) = %+v; want %+v", c.interval, got, c.want)
			}
			if got.IntervalMax <= got.IntervalMin {
				t.Fatalf("whatsmeow draws the ping interval in [min, max): max %s must exceed min %s", got.IntervalMax, got.IntervalMin)
			}
		})
	}
	// whatsmeow's own timing is what an interval of 20 s gives: the scaling is whatsmeow's.
	own := KeepaliveTiming{IntervalMin: whatsmeow.KeepAliveIntervalMin, IntervalMax: whatsmeow.KeepAliveIntervalMax,
		Deadline: whatsmeow.KeepAliveResponseDeadline, MaxFail: whatsmeow.KeepAliveMaxFailTime}
	if got := ScaledKeepaliveTiming(20 * time.Second); got != own {
		t.Fatalf("whatsmeow's timing is %+v; ScaledKeepaliveTiming(20s) = %+v", own, got)
	}
}

// The driver refuses a test keepalive unless it dials a fake WhatsApp server, and one outside
// its bounds, before it touches whatsmeow's process-wide timing.
func TestTheDriverRefusesATestKeepaliveWithoutATestDial(t *testing.T) {
	dial := &wadial.Config{Addr: "127.0.0.1:1", RootPubKey: make([]byte, wadial.RootKeySize)}
	for _, c := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"against WhatsApp", Config{DB: &storage.DB{}, TestKeepalive: time.Second}, "needs a test dial"},
		{"below the bound", Config{DB: &storage.DB{}, Dial: dial, TestKeepalive: time.Millisecond}, "must be between 100ms and 20s"},
		{"above the bound", Config{DB: &storage.DB{}, Dial: dial, TestKeepalive: time.Minute}, "must be between 100ms and 20s"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := whatsmeow.KeepAliveMaxFailTime
			d, err := New(context.Background(), c.cfg)
			if err == nil {
				d.Close()
				t.Fatal("New accepted it")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("New: %v; want %q", err, c.want)
			}
			if whatsmeow.KeepAliveMaxFailTime != before {
				t.Fatalf("a refused driver changed whatsmeow's keepalive to %s", whatsmeow.KeepAliveMaxFailTime)
			}
		})
	}
}
