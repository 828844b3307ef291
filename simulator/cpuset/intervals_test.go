package cpuset

import (
	"testing"
	"time"
)

func TestTheIntervalsSayWhatLoadTheGeneratorDroveWithinTheDelayLimit(t *testing.T) {
	ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
	tests := []struct {
		name      string
		intervals []Interval
		want      Rates
	}{
		{"no intervals", nil, Rates{}},
		{"idle intervals say nothing", []Interval{{RequestsPerSecond: 0, SchedP99: ms(40)}}, Rates{}},
		{"a ramp valid up to 3,500/s, not from 5,200/s", []Interval{
			{RequestsPerSecond: 700, SchedP99: ms(0.2)},
			{RequestsPerSecond: 3500, SchedP99: ms(0.9)},
			{RequestsPerSecond: 5200, SchedP99: ms(1.6)},
			{RequestsPerSecond: 7000, SchedP99: ms(6.3)},
			{RequestsPerSecond: 6900, SchedP99: ms(4)},
		}, Rates{ValidUpTo: 3500, InvalidFrom: 5200, Valid: 2, Busy: 5}},
		{"exactly at the limit is valid", []Interval{{RequestsPerSecond: 7000, SchedP99: DelayLimit}}, Rates{ValidUpTo: 7000, Valid: 1, Busy: 1}},
		{"a disturbed quiet interval: invalid from a low rate, valid at a higher one", []Interval{
			{RequestsPerSecond: 1000, SchedP99: ms(30)},
			{RequestsPerSecond: 7000, SchedP99: ms(0.8)},
		}, Rates{ValidUpTo: 7000, InvalidFrom: 1000, Valid: 1, Busy: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RatesOf(tt.intervals); got != tt.want {
				t.Errorf("RatesOf = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestAnInvalidRunSaysWhatLoadItsGeneratorDidDriveWithinTheLimit(t *testing.T) {
	tests := []struct {
		rates Rates
		want  string
	}{
		{Rates{}, ""},
		{Rates{ValidUpTo: 3512, InvalidFrom: 5230, Valid: 9, Busy: 30}, "in intervals of 5s its goroutines waited at most 1ms at p99 up to 3512 requests/s (9 of 30 intervals with requests), longer from 5230 requests/s"},
		{Rates{InvalidFrom: 300, Busy: 30}, "in none of its 30 intervals of 5s with requests did its goroutines wait at most 1ms at p99 (the least busy: 300 requests/s)"},
		{Rates{ValidUpTo: 7000, Valid: 30, Busy: 30}, "in every one of its 30 intervals of 5s with requests its goroutines waited at most 1ms at p99 (up to 7000 requests/s)"},
	}
	for _, tt := range tests {
		if got := tt.rates.Says(); got != tt.want {
			t.Errorf("%+v.Says() =\n%q, want\n%q", tt.rates, got, tt.want)
		}
	}
}
