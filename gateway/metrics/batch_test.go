package metrics

import (
	"context"
	"maps"
	"testing"

	"wagate/gateway/delivery/batch"
	"wagate/gateway/event"
)

func TestBreakerStateIsALabelledGauge(t *testing.T) {
	cases := []struct {
		current string
		want    map[string]float64
	}{
		{"closed", map[string]float64{"closed": 1, "half-open": 0, "open": 0}},
		{"half-open", map[string]float64{"closed": 0, "half-open": 1, "open": 0}},
		{"open", map[string]float64{"closed": 0, "half-open": 0, "open": 1}},
	}
	for _, tc := range cases {
		if got := breakerGauge(tc.current); !maps.Equal(got, tc.want) {
			t.Errorf("%v: %v, want %v", tc.current, got, tc.want)
		}
	}
}

// fixedBatch answers the same snapshot at every scrape.
type fixedBatch batch.Metrics

func (f fixedBatch) Snapshot(context.Context) batch.Metrics { return batch.Metrics(f) }

// samples gathers every counter and gauge sample by name and label values, and a histogram's
// sample count and sum.
func samples(t *testing.T, m *Metrics) map[string]float64 {
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
				key += "{" + l.GetValue() + "}"
			}
			switch {
			case mt.GetGauge() != nil:
				out[key] = mt.GetGauge().GetValue()
			case mt.GetCounter() != nil:
				out[key] = mt.GetCounter().GetValue()
			case mt.GetHistogram() != nil:
				out[key+"_count"] = float64(mt.GetHistogram().GetSampleCount())
				out[key+"_sum"] = mt.GetHistogram().GetSampleSum()
			}
		}
	}
	return out
}

// Each figure of batch delivery's snapshot is its wagate_batch_* or wagate_outbox_* sample, and
// the batch sizes the delivery reports through its hook make wagate_batch_size_items.
func TestBatchSeriesAreTheSnapshotsFigures(t *testing.T) {
	m := New()
	snap := batch.Metrics{QRBatchSize: 3, StatusBatchSize: 4, TimeSinceLastFlushMs: 1500, Pending: 9, OutboxPendingRead: 2,
		OutboxCapacity: 5000, InFlight: 1, Sent: 40, BatchesSent: 6, FailuresByStatus: map[string]int64{"503": 2, "network": 1},
		Retried: 3, Expired: 1, Coalesced: 12, DeadLettered: 1, EnqueueFailed: 2, AppendsOvertakenByLoss: 3, Breaker: "open", BreakerOpened: 1,
		BreakerPauses: 2, Flushes: map[string]int64{"size": 1, "time": 4, "priority": 2}}
	if err := m.RegisterBatch(fixedBatch(snap)); err != nil {
		t.Fatal(err)
	}
	sent := m.BatchSizes()
	sent(event.KindStatus, 20)
	sent(event.KindStatus, 30)
	got := samples(t, m)
	want := map[string]float64{
		"wagate_batch_waiting_items{qr}": 3, "wagate_batch_waiting_items{status}": 4, "wagate_batch_seconds_since_last_flush": 1.5,
		"wagate_outbox_length": 9, "wagate_outbox_read_unacked": 2, "wagate_outbox_capacity": 5000, "wagate_batch_in_flight": 1,
		"wagate_batch_items_sent_total": 40, "wagate_batch_batches_sent_total": 6,
		"wagate_batch_send_failures_total{503}": 2, "wagate_batch_send_failures_total{network}": 1,
		"wagate_batch_retries_total": 3, "wagate_batch_expired_total": 1, "wagate_batch_coalesced_total": 12,
		"wagate_batch_dead_lettered_total": 1, "wagate_outbox_enqueue_failed_total": 2,
		"wagate_outbox_appends_overtaken_by_loss_total": 3, "wagate_batch_breaker_state{open}": 1, "wagate_batch_breaker_state{closed}": 0, "wagate_batch_breaker_state{half-open}": 0,
		"wagate_batch_breaker_opened_total": 1, "wagate_batch_paused_total": 2,
		"wagate_batch_flushes_total{size}": 1, "wagate_batch_flushes_total{time}": 4, "wagate_batch_flushes_total{priority}": 2,
		"wagate_batch_flushes_total{shutdown}":  0,
		"wagate_batch_size_items{status}_count": 2, "wagate_batch_size_items{status}_sum": 50,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
}
