package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"wagate/gateway/cache"
)

// CacheSnapshotter is what the cache metrics read at each scrape: batch mode's cache
// (*cache.Cache), or a fixed snapshot in tests.
type CacheSnapshotter interface {
	Snapshot(ctx context.Context) cache.Metrics
}

// cacheCollector exposes a cache's snapshot under wagate_cache_ names.
type cacheCollector struct {
	c                                                      CacheSnapshotter
	sessions, keys, hits, misses, l1Size, inv, flushes, sh *prometheus.Desc
	renewals                                               *prometheus.Desc
}

// RegisterCache adds the wagate_cache_* series, read from c's snapshot at each scrape (at most
// 1 s of Redis per scrape). Call it once, in batch mode.
func (m *Metrics) RegisterCache(c CacheSnapshotter) error {
	return m.Registry.Register(&cacheCollector{
		c: c,
		// The sessions count is its own metric, not a kind="all" value of wagate_cache_keys, so that
		// sum(wagate_cache_keys) does not count keys twice.
		sessions: prometheus.NewDesc("wagate_cache_sessions", "Sessions with live cached state in Redis (GET /metrics/cache totalKeys).", nil, nil),
		keys:     prometheus.NewDesc("wagate_cache_keys", "Live cached values in Redis by kind (qr, status); a session can hold both.", []string{"kind"}, nil),
		hits:     prometheus.NewDesc("wagate_cache_hits_total", "Cache hits by level (l3: Laravel knew the session).", []string{"level"}, nil),
		misses:   prometheus.NewDesc("wagate_cache_misses_total", "Cache misses by level (l3: Laravel did not know the session).", []string{"level"}, nil),
		l1Size:   prometheus.NewDesc("wagate_cache_l1_entries", "Approximate L1 entries.", nil, nil),
		inv:      prometheus.NewDesc("wagate_cache_invalidations_total", "L1 invalidations by direction (sent, received).", []string{"direction"}, nil),
		flushes:  prometheus.NewDesc("wagate_cache_l1_flushes_total", "Full L1 flushes (Redis reconnects).", nil, nil),
		sh:       prometheus.NewDesc("wagate_cache_l3_shared_total", "Laravel lookups answered by another caller's in-flight lookup (singleflight).", nil, nil),
		renewals: prometheus.NewDesc("wagate_cache_owner_renewals_total", "Expired statuses of this gateway's own sessions renewed from their live state instead of a Laravel lookup.", nil, nil),
	})
}

// Describe implements prometheus.Collector.
func (col *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{col.sessions, col.keys, col.hits, col.misses, col.l1Size, col.inv, col.flushes, col.sh, col.renewals} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (col *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	m := col.c.Snapshot(ctx)
	gauge, counter := prometheus.GaugeValue, prometheus.CounterValue
	ch <- prometheus.MustNewConstMetric(col.sessions, gauge, float64(m.TotalKeys))
	ch <- prometheus.MustNewConstMetric(col.keys, gauge, float64(m.QRKeys), "qr")
	ch <- prometheus.MustNewConstMetric(col.keys, gauge, float64(m.StatusKeys), "status")
	for _, l := range []struct {
		name string
		s    cache.LevelStats
	}{{"l1", m.L1}, {"l2", m.L2}, {"l3", m.L3}} {
		ch <- prometheus.MustNewConstMetric(col.hits, counter, float64(l.s.Hits), l.name)
		ch <- prometheus.MustNewConstMetric(col.misses, counter, float64(l.s.Misses), l.name)
	}
	ch <- prometheus.MustNewConstMetric(col.l1Size, gauge, float64(m.L1Size))
	ch <- prometheus.MustNewConstMetric(col.inv, counter, float64(m.Counters.InvalidationsTx), "sent")
	ch <- prometheus.MustNewConstMetric(col.inv, counter, float64(m.Counters.InvalidationsRx), "received")
	ch <- prometheus.MustNewConstMetric(col.flushes, counter, float64(m.Counters.L1Flushes))
	ch <- prometheus.MustNewConstMetric(col.sh, counter, float64(m.Counters.L3Shared))
	ch <- prometheus.MustNewConstMetric(col.renewals, counter, float64(m.Counters.OwnerRenewals))
}
