package api

import (
	"errors"
	"time"

	"wagate/gateway/internal/configcheck"
)

// DefaultCheckTimeout bounds each readiness check when Config.CheckTimeout is zero.
const DefaultCheckTimeout = 2 * time.Second

// DefaultConfig returns the API's tunable defaults, the values zero fields take: the readiness
// check timeout and the rate limits. The wiring (token, services, checks, routes) is left unset.
func DefaultConfig() Config {
	var limits RateLimit
	limits.fill()
	limits.Now = nil
	return Config{CheckTimeout: DefaultCheckTimeout, RateLimit: limits}
}

// Validate reports settings that cannot work: a negative check timeout, rate or burst. Zero
// fields are fine (they take the defaults); the wiring is New's to check.
func (c Config) Validate() error {
	return errors.Join(
		configcheck.NotNegative("api", "CheckTimeout", c.CheckTimeout),
		configcheck.NotNegative("api", "RateLimit.PerSecond", c.RateLimit.PerSecond),
		configcheck.NotNegative("api", "RateLimit.Burst", c.RateLimit.Burst),
		configcheck.NotNegative("api", "RateLimit.UnauthPerSecond", c.RateLimit.UnauthPerSecond),
		configcheck.NotNegative("api", "RateLimit.UnauthBurst", c.RateLimit.UnauthBurst),
		configcheck.NotNegative("api", "RateLimit.OpsPerSecond", c.RateLimit.OpsPerSecond),
		configcheck.NotNegative("api", "RateLimit.OpsBurst", c.RateLimit.OpsBurst),
		configcheck.NotNegative("api", "RateLimit.MaxClients", c.RateLimit.MaxClients),
	)
}
