package api

import (
	"strings"
	"testing"
	"time"
)

func TestDefaultConfigIsWhatZeroSettingsTake(t *testing.T) {
	d := DefaultConfig()
	if d.CheckTimeout != DefaultCheckTimeout {
		t.Errorf("CheckTimeout = %v, want %v", d.CheckTimeout, DefaultCheckTimeout)
	}
	var filled RateLimit
	filled.fill()
	if d.RateLimit.PerSecond != filled.PerSecond || d.RateLimit.Burst != filled.Burst || d.RateLimit.MaxClients != filled.MaxClients ||
		d.RateLimit.UnauthPerSecond != filled.UnauthPerSecond || d.RateLimit.OpsBurst != filled.OpsBurst {
		t.Errorf("RateLimit = %+v, want the rate limiter's defaults %+v", d.RateLimit, filled)
	}
	if err := d.Validate(); err != nil {
		t.Errorf("DefaultConfig().Validate() = %v", err)
	}
}

func TestValidateRefusesNegativeSettings(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("a zero config (all defaults) is refused: %v", err)
	}
	err := Config{CheckTimeout: -time.Second, RateLimit: RateLimit{Burst: -1}}.Validate()
	if err == nil || !strings.Contains(err.Error(), "CheckTimeout is negative") || !strings.Contains(err.Error(), "RateLimit.Burst is negative") {
		t.Errorf("Validate = %v, want both negatives named", err)
	}
}
