package outbox

import (
	"strings"
	"testing"
)

func TestAZeroConfigTakesDefaultConfig(t *testing.T) {
	var c Config
	c.fill()
	d := DefaultConfig()
	if c.Stream != d.Stream || c.Group != d.Group || c.DeadLetterStream != d.DeadLetterStream || c.Max != d.Max ||
		c.AppendTimeout != d.AppendTimeout || c.DeadLetterMax != d.DeadLetterMax || c.RoomPoll != d.RoomPoll ||
		c.ConsumerGoneAfter != d.ConsumerGoneAfter || c.ConsumerSweep != d.ConsumerSweep || c.MarkerCheck != d.MarkerCheck {
		t.Errorf("a zero config filled = %+v, want DefaultConfig %+v", c, d)
	}
	if c.MarkerKey != d.Stream+":generation" {
		t.Errorf("MarkerKey = %q, want it derived from the stream", c.MarkerKey)
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
		"Max is negative": {Max: -1},
		"GatewayID 129 characters is above 128 characters": {GatewayID: strings.Repeat("g", 129)},
	}
	for want, c := range cases {
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want it to say %q", err, want)
		}
	}
}
