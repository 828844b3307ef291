package session

import (
	"strings"
	"testing"
	"time"
)

func TestAZeroConfigTakesDefaultConfig(t *testing.T) {
	var c Config
	c.fill()
	c.Logger = nil
	d := DefaultConfig()
	if c.QRFirst != d.QRFirst || c.QRNext != d.QRNext || c.QRCodes != d.QRCodes || c.RestoreConcurrency != d.RestoreConcurrency ||
		c.PairLoginTimeout != d.PairLoginTimeout || c.MaxQueuedEvents != d.MaxQueuedEvents || c.ResyncRetry != d.ResyncRetry {
		t.Errorf("a zero config filled = %+v, want DefaultConfig %+v", c, d)
	}
	if err := d.Validate(); err != nil {
		t.Errorf("DefaultConfig().Validate() = %v", err)
	}
}

func TestValidateRefusesWhatCannotWork(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("a zero config (all defaults) is refused: %v", err)
	}
	cases := map[string]Config{
		"QRNext is negative":          {QRNext: -time.Second},
		"QRCodes 101 is above 100":    {QRCodes: 101},
		"RestoreConcurrency 10001":    {RestoreConcurrency: 10_001},
		"MaxQueuedEvents is negative": {MaxQueuedEvents: -1},
	}
	for want, c := range cases {
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate(%+v) = %v, want it to say %q", c, err, want)
		}
	}
}
