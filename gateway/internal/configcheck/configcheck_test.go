package configcheck

import (
	"testing"
	"time"
)

func TestANegativeSettingIsNamedAndZeroIsFine(t *testing.T) {
	if err := NotNegative("cache", "QRTTL", -time.Second); err == nil || err.Error() != "cache config: QRTTL is negative (-1s)" {
		t.Errorf("NotNegative(-1s) = %v", err)
	}
	if err := NotNegative("api", "RateLimit.PerSecond", 0.0); err != nil {
		t.Errorf("NotNegative(0) = %v, want nil: zero takes the default", err)
	}
}
