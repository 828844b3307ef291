package metrics

import "github.com/prometheus/client_golang/prometheus"

// RegisterRedisPolicy adds wagate_redis_eviction_policy_unsafe, read from unsafe at each scrape
// (the outbox keeper's last read of Redis's maxmemory-policy; it must not query Redis). Call it
// once, in batch mode.
func (m *Metrics) RegisterRedisPolicy(unsafe func() bool) error {
	return m.Registry.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "wagate_redis_eviction_policy_unsafe",
		Help: "1 while Redis's maxmemory-policy, as the gateway last read it (every 5 s), can evict the outbox (allkeys-*: set noeviction or a volatile-* policy); 0 otherwise, or when Redis does not tell its policy.",
	}, func() float64 {
		if unsafe() {
			return 1
		}
		return 0
	}))
}
