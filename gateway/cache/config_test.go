package cache

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestAZeroConfigTakesDefaultConfig(t *testing.T) {
	var c Config
	c.fill()
	d := DefaultConfig()
	c.GatewayID, c.Now, c.Logger = "", nil, nil
	if !reflect.DeepEqual(c, d) {
		t.Errorf("a zero config filled = %+v, want DefaultConfig %+v", c, d)
	}
	if err := d.Validate(); err != nil {
		t.Errorf("DefaultConfig().Validate() = %v", err)
	}
}

func TestValidateRefusesANegativeTTL(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("a zero config (all defaults) is refused: %v", err)
	}
	err := Config{StatusTTL: -time.Second}.Validate()
	if err == nil || !strings.Contains(err.Error(), "StatusTTL is negative") {
		t.Errorf("Validate = %v, want StatusTTL is negative", err)
	}
}
