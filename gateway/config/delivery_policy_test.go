package config

import (
	"strings"
	"testing"
	"time"
)

// The delivery policy's two horizons are settings: the poison horizon (how long a 5xx must
// persist for one batch before it is split) and the cap on a Retry-After pause.
func TestThePoisonHorizonAndTheRetryAfterCapAreSettings(t *testing.T) {
	cases := []struct {
		name              string
		set               map[string]string
		horizon, maxPause time.Duration
		wantErr           string
	}{
		{"defaults", nil, 5 * time.Minute, 5 * time.Minute, ""},
		{"set", map[string]string{"WAGATE_POISON_HORIZON": "90s", "WAGATE_MAX_RETRY_AFTER": "1m"}, 90 * time.Second, time.Minute, ""},
		{"zero horizon", map[string]string{"WAGATE_POISON_HORIZON": "0s"}, 0, 0, "WAGATE_POISON_HORIZON"},
		{"negative cap", map[string]string{"WAGATE_MAX_RETRY_AFTER": "-1s"}, 0, 0, "WAGATE_MAX_RETRY_AFTER"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := minimal()
			for k, v := range c.set {
				e[k] = v
			}
			l, _, err := load(t, e, nil)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v; want one naming %s", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if l.Config.Batch.PoisonHorizon != c.horizon || l.Config.Batch.MaxRetryAfter != c.maxPause {
				t.Fatalf("poison horizon %s, max Retry-After %s; want %s, %s", l.Config.Batch.PoisonHorizon, l.Config.Batch.MaxRetryAfter, c.horizon, c.maxPause)
			}
		})
	}
}
