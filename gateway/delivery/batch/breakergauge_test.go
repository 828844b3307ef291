package batch

import (
	"maps"
	"testing"

	"github.com/sony/gobreaker/v2"
)

func TestBreakerStateIsALabelledGauge(t *testing.T) {
	cases := []struct {
		current gobreaker.State
		want    map[string]float64
	}{
		{gobreaker.StateClosed, map[string]float64{"closed": 1, "half-open": 0, "open": 0}},
		{gobreaker.StateHalfOpen, map[string]float64{"closed": 0, "half-open": 1, "open": 0}},
		{gobreaker.StateOpen, map[string]float64{"closed": 0, "half-open": 0, "open": 1}},
	}
	for _, tc := range cases {
		if got := breakerGauge(tc.current); !maps.Equal(got, tc.want) {
			t.Errorf("%v: %v, want %v", tc.current, got, tc.want)
		}
	}
}
