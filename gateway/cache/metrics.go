package cache

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
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
