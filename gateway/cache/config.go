package cache

import (
	"errors"
	"fmt"
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
	var errs []error
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"L1TTL", int64(c.L1TTL)}, {"L1MaxSize", int64(c.L1MaxSize)}, {"QRTTL", int64(c.QRTTL)},
		{"StatusTTL", int64(c.StatusTTL)}, {"ConnectionTTL", int64(c.ConnectionTTL)},
		{"SessionTTL", int64(c.SessionTTL)}, {"NegativeTTL", int64(c.NegativeTTL)},
		{"WriteTimeout", int64(c.WriteTimeout)},
	} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("cache config: %s is negative (%d)", f.name, f.v))
		}
	}
	return errors.Join(errs...)
}
