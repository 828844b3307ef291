package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// JournalSnapshot is what the message journal's series read at each scrape (batch mode's journal
// keeper, gateway/app): the rows it held at its last count and what it did since the start.
type JournalSnapshot struct {
	// Rows is how many rows the journal held at its last count (every few seconds, not per
	// scrape); OldestRowAge how long the oldest of them had waited by now (0: none).
	Rows         int64
	OldestRowAge time.Duration
	// Recorded, Settled and Pruned are rows added, deleted as settled and deleted unsettled after
	// the retention; Replayed rows appended again after Redis lost its data, Replays replays that
	// went through, ReplayFailures replay attempts that failed and were retried.
	Recorded, Settled, Pruned, Replayed, Replays, ReplayFailures int64
}

// journalSeries are the wagate_journal_* series, in the order Collect emits them.
var journalSeries = []struct {
	name, help string
	typ        prometheus.ValueType
}{
	{"wagate_journal_rows", "Customers' messages and receipts the message journal holds (taken by the gateway, not yet settled by Laravel), at its last count (every 15 s). In cluster mode the journal is shared: every replica's rows.", prometheus.GaugeValue},
	{"wagate_journal_oldest_row_age_seconds", "How long the oldest row of the journal's last count has waited (0 when it held none).", prometheus.GaugeValue},
	{"wagate_journal_recorded_total", "Messages and receipts this gateway wrote to the journal (a redelivery of an item it holds adds none).", prometheus.CounterValue},
	{"wagate_journal_settled_total", "Journal rows this gateway settled: marked settled because Laravel applied their item (kept for WAGATE_JOURNAL_SETTLED_RETENTION), or deleted because it was dead-lettered.", prometheus.CounterValue},
	{"wagate_journal_replayed_total", "Journal rows appended to the outbox again after Redis lost its data (a retried replay's rows count again; the outbox takes them once).", prometheus.CounterValue},
	{"wagate_journal_replays_total", "Replays of the journal after a Redis data loss that went through.", prometheus.CounterValue},
	{"wagate_journal_replay_failures_total", "Replay attempts that failed (Redis down again, the outbox full) and were retried.", prometheus.CounterValue},
	{"wagate_journal_pruned_total", "Journal rows deleted unsettled after WAGATE_JOURNAL_RETENTION: items that may never have reached Laravel.", prometheus.CounterValue},
}

// journalCollector exposes the journal's snapshot under wagate_journal_* names.
type journalCollector struct {
	snapshot func() JournalSnapshot
	descs    []*prometheus.Desc
}

// RegisterJournal adds the message journal's series (wagate_journal_*), read from snapshot at
// each scrape (it must not query the store: the row count is taken on a timer). Call it once, in
// batch mode.
func (m *Metrics) RegisterJournal(snapshot func() JournalSnapshot) error {
	c := &journalCollector{snapshot: snapshot}
	for _, s := range journalSeries {
		c.descs = append(c.descs, prometheus.NewDesc(s.name, s.help, nil, nil))
	}
	return m.Registry.Register(c)
}

// Describe implements prometheus.Collector.
func (c *journalCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *journalCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.snapshot()
	values := []float64{float64(s.Rows), s.OldestRowAge.Seconds(), float64(s.Recorded), float64(s.Settled),
		float64(s.Replayed), float64(s.Replays), float64(s.ReplayFailures), float64(s.Pruned)}
	for i, v := range values {
		ch <- prometheus.MustNewConstMetric(c.descs[i], journalSeries[i].typ, v)
	}
}
