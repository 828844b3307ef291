package api

import (
	"errors"
	"fmt"
	"time"
)

// DefaultCheckTimeout bounds each readiness check when Config.CheckTimeout is zero.
const DefaultCheckTimeout = 2 * time.Second

// DefaultConfig returns the API's tunable defaults, the values zero fields take: the readiness
// check timeout and the rate limits. The wiring (token, services, checks, routes) is left unset.
func DefaultConfig() Config {
	limits := RateLimit{}.withDefaults()
	limits.Now = nil
	return Config{CheckTimeout: DefaultCheckTimeout, RateLimit: limits}
}

// Validate reports settings that cannot work: a negative check timeout, rate or burst. Zero
// fields are fine (they take the defaults); the wiring is New's to check.
func (c Config) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"CheckTimeout", float64(c.CheckTimeout)},
		{"RateLimit.PerSecond", c.RateLimit.PerSecond}, {"RateLimit.Burst", float64(c.RateLimit.Burst)},
		{"RateLimit.UnauthPerSecond", c.RateLimit.UnauthPerSecond}, {"RateLimit.UnauthBurst", float64(c.RateLimit.UnauthBurst)},
		{"RateLimit.OpsPerSecond", c.RateLimit.OpsPerSecond}, {"RateLimit.OpsBurst", float64(c.RateLimit.OpsBurst)},
		{"RateLimit.MaxClients", float64(c.RateLimit.MaxClients)},
	} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("api config: %s is negative (%g)", f.name, f.v))
		}
	}
	return errors.Join(errs...)
}
