package metrics

import (
	"testing"
	"time"

	"wagate/gateway/session"
)

// clusterValues gathers every sample of the wagate_cluster_* families by name and label value
// (counters, gauges, and a histogram's sample count).
func clusterValues(t *testing.T, m *Metrics) map[string]float64 {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, mt := range f.GetMetric() {
			key := f.GetName()
			for _, l := range mt.GetLabel() {
				key += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			switch {
			case mt.GetCounter() != nil:
				out[key] = mt.GetCounter().GetValue()
			case mt.GetGauge() != nil:
				out[key] = mt.GetGauge().GetValue()
			case mt.GetHistogram() != nil:
				out[key] = float64(mt.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// Every cluster series exists at 0 from the start (alerts and rate() work before the first
// takeover), and each method lands in its own series.
func TestClusterMetricsStartAtZeroAndCount(t *testing.T) {
	m := New()
	c := m.RegisterCluster()
	check := func(when string, want map[string]float64) {
		t.Helper()
		got := clusterValues(t, m)
		for name, v := range want {
			if g, ok := got[name]; !ok || g != v {
				t.Errorf("%s: %s = %v (present %v), want %v", when, name, g, ok, v)
			}
		}
	}
	check("at start", map[string]float64{
		"wagate_cluster_fenced_writes_total{where=event}": 0, "wagate_cluster_fenced_writes_total{where=registry}": 0,
		"wagate_cluster_fenced_writes_total{where=registry_refused}": 0, "wagate_cluster_fenced_writes_total{where=connect}": 0,
		"wagate_cluster_fenced_writes_total{where=logout}": 0,
		"wagate_cluster_shard_claims_total":                0, "wagate_cluster_shard_losses_total": 0, "wagate_cluster_shard_handoffs_total": 0,
		"wagate_cluster_member_fenced_total": 0, "wagate_cluster_members": 0, "wagate_cluster_shards_held": 0,
		"wagate_cluster_takeover_seconds": 0,
	})
	c.FencedWrite(session.FencedConnect)
	c.FencedWrite(FencedRegistryRefused)
	c.FencedWrite(FencedRegistryRefused)
	c.Claimed(5)
	c.Lost()
	c.HandedOver()
	c.HandedOver()
	c.MemberFenced()
	c.SetHeld(3)
	c.SetMembers(2)
	c.ObserveTakeover(1500 * time.Millisecond)
	check("after use", map[string]float64{
		"wagate_cluster_fenced_writes_total{where=event}": 0, "wagate_cluster_fenced_writes_total{where=registry}": 0,
		"wagate_cluster_fenced_writes_total{where=registry_refused}": 2, "wagate_cluster_fenced_writes_total{where=connect}": 1,
		"wagate_cluster_shard_claims_total": 5, "wagate_cluster_shard_losses_total": 1, "wagate_cluster_shard_handoffs_total": 2,
		"wagate_cluster_member_fenced_total": 1, "wagate_cluster_members": 2, "wagate_cluster_shards_held": 3,
		"wagate_cluster_takeover_seconds": 1,
	})
}
