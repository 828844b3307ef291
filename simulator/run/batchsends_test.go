package run

import (
	"reflect"
	"testing"
	"time"

	"wagate/reports"
)

// TestBatchSendsAreTheCountersChangeAndANewProcessCountsFromZero: the series' batch sends of an
// interval are the change of the gateway's counters between two readings; across a gateway
// restart (another process start time, or counters that went down) the new process's counts.
func TestBatchSendsAreTheCountersChangeAndANewProcessCountsFromZero(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	read := func(s int, process, first, retries, held float64) batchSendsReading {
		return batchSendsReading{at: t0.Add(time.Duration(s) * time.Second), process: process, first: first, retries: retries, held: held}
	}
	for _, tc := range []struct {
		name      string
		prev, cur batchSendsReading
		want      *reports.BatchSends
	}{
		{"no earlier reading", batchSendsReading{}, read(2, 100, 5, 1, 0), nil},
		{"no later reading", read(2, 100, 5, 1, 0), read(2, 100, 5, 1, 0), nil},
		{"the change over 2 s", read(2, 100, 5, 1, 0), read(4, 100, 12, 4, 2), &reports.BatchSends{Seconds: 2, First: 7, Retries: 3, Held: 2}},
		{"a reading missed: the change over 5 s", read(2, 100, 5, 1, 0), read(7, 100, 9, 2, 0), &reports.BatchSends{Seconds: 5, First: 4, Retries: 1}},
		{"a restarted gateway counts from zero", read(2, 100, 50, 10, 3), read(4, 103, 6, 1, 0), &reports.BatchSends{Seconds: 2, First: 6, Retries: 1}},
		{"counters that went down are a restart", read(2, 100, 50, 10, 3), read(4, 100, 60, 2, 0), &reports.BatchSends{Seconds: 2, First: 60, Retries: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.cur.since(tc.prev); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("since = %+v; want %+v", got, tc.want)
			}
		})
	}
}

func TestBatchSendsAreReadFromTheGatewaysCountersOnlyInBatchMode(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, ok := readBatchSends(promSample{"go_goroutines": 40}, at); ok {
		t.Error("a gateway without batch counters (legacy mode) read as batch sends")
	}
	r, ok := readBatchSends(promSample{"wagate_batch_first_attempts_total": 7, "wagate_batch_retries_total": 2,
		"wagate_batch_retries_held_total": 1, "process_start_time_seconds": 1.7e9}, at)
	if want := (batchSendsReading{at: at, process: 1.7e9, first: 7, retries: 2, held: 1}); !ok || r != want {
		t.Errorf("read %+v %v; want %+v", r, ok, want)
	}
}
