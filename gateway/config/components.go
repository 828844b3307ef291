package config

import (
	"time"

	"wagate/gateway/api"
	"wagate/gateway/cache"
	"wagate/gateway/delivery/batch"
	"wagate/gateway/delivery/retrybudget"
	"wagate/gateway/outbox"
	"wagate/gateway/session"
)

// The component settings a Config fills, mapped once: the gateway wires them (logger, hooks,
// clients) and Validate checks them with each component's own Validate, so a component's rule is
// written once, in the component.

// SessionConfig is the session manager's settings; Logger, Hooks and ResyncRestored are the
// caller's.
func (c Config) SessionConfig() session.Config {
	return session.Config{
		QRFirst:            c.QRFirst,
		QRNext:             c.QRNext,
		QRCodes:            c.QRCodes,
		PairLoginTimeout:   c.PairLoginTimeout,
		RestoreConcurrency: c.RestoreConcurrency,
	}
}

// QRTiming is the pairings' QR rotation.
func (c Config) QRTiming() session.QRTiming {
	return session.QRTiming{First: c.QRFirst, Next: c.QRNext, Codes: c.QRCodes}
}

// ClaimMinIdle is how long another gateway's outbox entry must be idle before this one claims it:
// no live gateway can still be sending it (two Laravel timeouts and a batch's delivery timeout).
// A consumer idle that long with nothing pending belongs to a gone gateway.
func (c Config) ClaimMinIdle() time.Duration {
	return 2*c.LaravelTimeout + batch.DefaultDeliveryTimeout
}

// BatchConfig is batch delivery's settings.
func (c Config) BatchConfig() batch.Config {
	return batch.Config{
		BatchSize:        c.Batch.Size,
		BatchInterval:    c.Batch.Interval,
		PriorityInterval: c.Batch.PriorityInterval,
		MessageInterval:  c.Batch.MessageInterval,
		PoisonHorizon:    c.Batch.PoisonHorizon,
		MaxRetryAfter:    c.Batch.MaxRetryAfter,
		ClaimMinIdle:     c.ClaimMinIdle(),
		RetryBudget: retrybudget.Config{Percent: c.Batch.RetryBudgetPercent, MinPerSecond: c.Batch.RetryBudgetMinPerSecond,
			Burst: c.Batch.RetryBudgetBurst},
	}
}

// OutboxConfig is the outbox's settings; Logger and OnDataLost are the caller's. In cluster mode
// the outbox keeps only the entries of the shards this replica holds.
func (c Config) OutboxConfig() outbox.Config {
	cfg := outbox.Config{Max: int64(c.Batch.OutboxMax), GatewayID: c.GatewayID, ConsumerGoneAfter: c.ClaimMinIdle()}
	if c.Cluster {
		cfg.Shards = c.ClusterShards
	}
	return cfg
}

// CacheConfig is the batch mode cache's settings; Logger is the caller's.
func (c Config) CacheConfig() cache.Config {
	return cache.Config{
		QRTTL:         c.Cache.QRTTL,
		StatusTTL:     c.Cache.StatusTTL,
		ConnectionTTL: c.Cache.ConnectionTTL,
		SessionTTL:    c.Cache.SessionTTL,
		WriteTimeout:  c.Cache.WriteTimeout,
	}
}

// APIRateLimit is the API's per-client limit: zero values take the API's defaults, and a rate
// without a burst gets a burst of twice the rate. Invalid trusted proxies (which Validate refuses)
// are left out.
func (c Config) APIRateLimit() api.RateLimit {
	burst := c.RateLimitBurst
	if burst == 0 && c.RateLimit > 0 {
		burst = 2 * c.RateLimit
	}
	proxies, _ := c.TrustedProxyPrefixes()
	return api.RateLimit{PerSecond: float64(c.RateLimit), Burst: burst, TrustedProxies: proxies}
}

// componentErrors is every component's Validate of the settings c fills.
func (c Config) componentErrors() []error {
	return []error{
		c.SessionConfig().Validate(),
		c.BatchConfig().Validate(),
		c.OutboxConfig().Validate(),
		c.CacheConfig().Validate(),
		api.Config{RateLimit: c.APIRateLimit()}.Validate(),
	}
}
