package batch

import (
	"reflect"
	"testing"
)

func TestAZeroConfigTakesDefaultConfig(t *testing.T) {
	var c Config
	c.fill()
	d := DefaultConfig()
	c.Breaker = d.Breaker // the breaker fills its own zero fields (NewBreaker), with the same defaults
	if !reflect.DeepEqual(c, d) {
		t.Errorf("a zero config filled = %+v, want DefaultConfig %+v", c, d)
	}
	if err := d.Validate(); err != nil {
		t.Errorf("DefaultConfig().Validate() = %v", err)
	}
}
