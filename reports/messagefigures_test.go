package reports

import "testing"

func TestMessageFigures(t *testing.T) {
	counts := func(users int, m map[string]float64) *Report {
		r := &Report{Metrics: map[string]Metric{}}
		r.Scenario.Users = users
		for name, n := range m {
			r.Metrics[name] = NewCounterMetric(n, 60)
		}
		return r
	}
	tests := []struct {
		name     string
		r        *Report
		fig      Figure
		want     float64
		measured bool
	}{
		{"legacy: one request per message and per receipt, per user", counts(10, map[string]float64{
			"laravel_reqs{endpoint:message}": 200, "laravel_reqs{endpoint:receipt}": 400, "laravel_reqs{endpoint:status}": 1000}),
			FigMessageRequestsPerUser, 60, true},
		{"batch: the message and receipt batches, per user", counts(10, map[string]float64{
			"laravel_reqs{endpoint:message_batch}": 12, "laravel_reqs{endpoint:receipt_batch}": 8, "laravel_reqs{endpoint:status_batch}": 30}),
			FigMessageRequestsPerUser, 2, true},
		{"no message traffic", counts(10, map[string]float64{"laravel_reqs{endpoint:status}": 5}), FigMessageRequestsPerUser, 0, false},
		{"lost, duplicated and out of order add up", counts(10, map[string]float64{
			MetricMessagesLost: 1, MetricMessagesDuplicated: 2, MetricMessagesOutOfOrder: 3}), FigMessagesWrong, 6, true},
		{"a run without messages has none wrong", counts(10, nil), FigMessagesWrong, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.fig.Of(tt.r)
			if got != tt.want || ok != tt.measured {
				t.Fatalf("%s = %v (measured %v), want %v (%v)", tt.fig.Name, got, ok, tt.want, tt.measured)
			}
		})
	}
}
