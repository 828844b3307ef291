package cache

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// LevelStats are one level's hits and misses. For L3 a hit is a session Laravel knows and a
// miss one it does not (then cached negatively).
type LevelStats struct {
	Hits     int64   `json:"hits"`
	Misses   int64   `json:"misses"`
	HitRatio float64 `json:"hit_ratio"`
}

// Metrics is the JSON answer of GET /metrics/cache: snake_case keys, and the seed's three key
// counts under their original names as aliases (totalKeys, qrKeys, statusKeys).
type Metrics struct {
	// Sessions is the number of sessions with cached state (the seed's totalKeys).
	Sessions int64 `json:"sessions"`
	// QRValues and StatusValues count cached QR codes and statuses (qrKeys, statusKeys).
	QRValues     int64 `json:"qr_values"`
	StatusValues int64 `json:"status_values"`
	// The seed's names of the three counts above.
	TotalKeys  int64      `json:"totalKeys"`
	QRKeys     int64      `json:"qrKeys"`
	StatusKeys int64      `json:"statusKeys"`
	L1         LevelStats `json:"l1"`
	L2         LevelStats `json:"l2"`
	L3         LevelStats `json:"l3"`
	// HitRatio is the share of reads answered without asking Laravel.
	HitRatio   float64  `json:"hit_ratio"`
	Reads      int64    `json:"reads"`
	L1Size     int      `json:"l1_size"`
	Counters   Counters `json:"counters"`
	RedisError string   `json:"redis_error,omitempty"`
}

func ratio(h, m int64) float64 {
	if h+m == 0 {
		return 0
	}
	return float64(h) / float64(h+m)
}

// Snapshot returns the current metrics; the key counts come from Redis (bounded by ctx).
func (c *Cache) Snapshot(ctx context.Context) Metrics {
	ct := c.Counters()
	m := Metrics{
		L1:       LevelStats{Hits: ct.L1Hits, Misses: ct.L1Misses, HitRatio: ratio(ct.L1Hits, ct.L1Misses)},
		L2:       LevelStats{Hits: ct.L2Hits, Misses: ct.L2Misses, HitRatio: ratio(ct.L2Hits, ct.L2Misses)},
		L3:       LevelStats{Hits: ct.L3Hits, Misses: ct.L3Misses, HitRatio: ratio(ct.L3Hits, ct.L3Misses)},
		Reads:    ct.L1Hits + ct.L1Misses,
		L1Size:   c.L1Size(),
		Counters: ct,
	}
	m.HitRatio = ratio(ct.L1Hits+ct.L2Hits, ct.L2Misses)
	kc, err := c.KeyCounts(ctx)
	m.TotalKeys, m.QRKeys, m.StatusKeys = kc.Total, kc.QR, kc.Status
	m.Sessions, m.QRValues, m.StatusValues = kc.Total, kc.QR, kc.Status
	if err != nil {
		m.RedisError = err.Error()
	}
	return m
}

// MetricsHandler serves GET /metrics/cache as JSON.
func (c *Cache) MetricsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(c.Snapshot(ctx))
	})
}

// Collector exposes the cache's metrics to Prometheus under wagate_cache_ names.
type Collector struct {
	c                                                      *Cache
	sessions, keys, hits, misses, l1Size, inv, flushes, sh *prometheus.Desc
}

// Register registers a collector for c on reg.
func (c *Cache) Register(reg prometheus.Registerer) error {
	return reg.Register(&Collector{
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
	})
}

// Describe implements prometheus.Collector.
func (col *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{col.sessions, col.keys, col.hits, col.misses, col.l1Size, col.inv, col.flushes, col.sh} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (col *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	m := col.c.Snapshot(ctx)
	gauge, counter := prometheus.GaugeValue, prometheus.CounterValue
	ch <- prometheus.MustNewConstMetric(col.sessions, gauge, float64(m.TotalKeys))
	ch <- prometheus.MustNewConstMetric(col.keys, gauge, float64(m.QRKeys), "qr")
	ch <- prometheus.MustNewConstMetric(col.keys, gauge, float64(m.StatusKeys), "status")
	for _, l := range []struct {
		name string
		s    LevelStats
	}{{"l1", m.L1}, {"l2", m.L2}, {"l3", m.L3}} {
		ch <- prometheus.MustNewConstMetric(col.hits, counter, float64(l.s.Hits), l.name)
		ch <- prometheus.MustNewConstMetric(col.misses, counter, float64(l.s.Misses), l.name)
	}
	ch <- prometheus.MustNewConstMetric(col.l1Size, gauge, float64(m.L1Size))
	ch <- prometheus.MustNewConstMetric(col.inv, counter, float64(m.Counters.InvalidationsTx), "sent")
	ch <- prometheus.MustNewConstMetric(col.inv, counter, float64(m.Counters.InvalidationsRx), "received")
	ch <- prometheus.MustNewConstMetric(col.flushes, counter, float64(m.Counters.L1Flushes))
	ch <- prometheus.MustNewConstMetric(col.sh, counter, float64(m.Counters.L3Shared))
}
