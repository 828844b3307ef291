package metrics

import (
	"context"
	"testing"

	"wagate/gateway/cache"
)

// fixedCache answers the same snapshot at every scrape.
type fixedCache cache.Metrics

func (f fixedCache) Snapshot(context.Context) cache.Metrics { return cache.Metrics(f) }

// Each figure of the cache's snapshot is one wagate_cache_* sample; the sessions count is its own
// gauge, so sum(wagate_cache_keys) counts each cached value once (one QR code, two statuses of two
// sessions: 3, not 5).
func TestCacheSeriesAreTheSnapshotsFigures(t *testing.T) {
	m := New()
	snap := cache.Metrics{TotalKeys: 2, QRKeys: 1, StatusKeys: 2, L1Size: 7,
		L1: cache.LevelStats{Hits: 10, Misses: 3}, L2: cache.LevelStats{Hits: 2, Misses: 1}, L3: cache.LevelStats{Hits: 1}}
	snap.Counters.InvalidationsTx, snap.Counters.InvalidationsRx, snap.Counters.L1Flushes, snap.Counters.L3Shared, snap.Counters.OwnerRenewals = 4, 5, 1, 6, 8
	if err := m.RegisterCache(fixedCache(snap)); err != nil {
		t.Fatal(err)
	}
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	keysSum := 0.0
	for _, f := range families {
		for _, mt := range f.GetMetric() {
			key := f.GetName()
			for _, l := range mt.GetLabel() {
				key += "{" + l.GetValue() + "}"
			}
			switch {
			case mt.GetGauge() != nil:
				got[key] = mt.GetGauge().GetValue()
			case mt.GetCounter() != nil:
				got[key] = mt.GetCounter().GetValue()
			}
			if f.GetName() == "wagate_cache_keys" {
				keysSum += mt.GetGauge().GetValue()
			}
		}
	}
	want := map[string]float64{
		"wagate_cache_sessions": 2, "wagate_cache_keys{qr}": 1, "wagate_cache_keys{status}": 2,
		"wagate_cache_hits_total{l1}": 10, "wagate_cache_misses_total{l1}": 3, "wagate_cache_hits_total{l2}": 2,
		"wagate_cache_misses_total{l2}": 1, "wagate_cache_hits_total{l3}": 1, "wagate_cache_misses_total{l3}": 0,
		"wagate_cache_l1_entries": 7, "wagate_cache_invalidations_total{sent}": 4, "wagate_cache_invalidations_total{received}": 5,
		"wagate_cache_l1_flushes_total": 1, "wagate_cache_l3_shared_total": 6,
		"wagate_cache_owner_renewals_total": 8,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	if keysSum != 3 {
		t.Errorf("sum(wagate_cache_keys) = %v, want 3", keysSum)
	}
}
