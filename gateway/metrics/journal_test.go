package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Each figure of the journal's snapshot is its wagate_journal_* sample, of the right type, read
// afresh at each scrape.
func TestJournalSeriesAreTheSnapshotsFigures(t *testing.T) {
	m := New()
	snap := JournalSnapshot{Rows: 7, OldestRowAge: 90 * time.Second, Recorded: 40, Settled: 31, Pruned: 2, Replayed: 12, Replays: 1, ReplayFailures: 3}
	if err := m.RegisterJournal(func() JournalSnapshot { return snap }); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"wagate_journal_rows": 7, "wagate_journal_oldest_row_age_seconds": 90, "wagate_journal_recorded_total": 40,
		"wagate_journal_settled_total": 31, "wagate_journal_pruned_total": 2, "wagate_journal_replayed_total": 12,
		"wagate_journal_replays_total": 1, "wagate_journal_replay_failures_total": 3,
	}
	got := samples(t, m)
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	snap.Rows = 0
	if got := samples(t, m)["wagate_journal_rows"]; got != 0 {
		t.Errorf("wagate_journal_rows = %v after the snapshot changed, want 0 (read at each scrape)", got)
	}
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]string{}
	for _, f := range families {
		types[f.GetName()] = f.GetType().String()
	}
	for _, s := range journalSeries {
		want := "COUNTER"
		if s.typ == prometheus.GaugeValue {
			want = "GAUGE"
		}
		if types[s.name] != want {
			t.Errorf("%s is a %s, want a %s", s.name, types[s.name], want)
		}
	}
}
