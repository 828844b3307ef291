package cache

import (
	"errors"

	"wagate/gateway/internal/configcheck"
)

// DefaultConfig returns the cache's defaults, the values zero fields take (the Default*
// constants). GatewayID (random per process), Now and Logger are left unset.
func DefaultConfig() Config {
	return Config{
		KeyPrefix:     DefaultKeyPrefix,
		IndexPrefix:   DefaultIndexPrefix,
		Channel:       DefaultChannel,
		L1TTL:         DefaultL1TTL,
		L1MaxSize:     DefaultL1MaxSize,
		QRTTL:         DefaultQRTTL,
		StatusTTL:     DefaultStatusTTL,
		ConnectionTTL: DefaultConnectionTTL,
		SessionTTL:    DefaultSessionTTL,
		NegativeTTL:   DefaultNegativeTTL,
		WriteTimeout:  DefaultWriteTimeout,
	}
}

// Validate reports settings that cannot work: a negative TTL, timeout or L1 size. Zero fields
// are fine (they take the defaults).
func (c Config) Validate() error {
	return errors.Join(
		configcheck.NotNegative("cache", "L1TTL", c.L1TTL),
		configcheck.NotNegative("cache", "L1MaxSize", c.L1MaxSize),
		configcheck.NotNegative("cache", "QRTTL", c.QRTTL),
		configcheck.NotNegative("cache", "StatusTTL", c.StatusTTL),
		configcheck.NotNegative("cache", "ConnectionTTL", c.ConnectionTTL),
		configcheck.NotNegative("cache", "SessionTTL", c.SessionTTL),
		configcheck.NotNegative("cache", "NegativeTTL", c.NegativeTTL),
		configcheck.NotNegative("cache", "WriteTimeout", c.WriteTimeout),
	)
}
