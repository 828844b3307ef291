package reports

import (
	"fmt"

	"wagate/simulator/threshold"
)

// EvaluateThreshold evaluates a k6 threshold expression ("<agg> <op> <value>", e.g. "p(95)<50",
// "count==0", "rate < 0.01") against a metric summary. It returns the observed aggregate, whether
// the threshold held, and whether the aggregate exists for the metric. The expression is read by
// simulator/threshold, the one reader of k6's threshold language (tag filters and abortOnFail
// included); this is the part Merge needs to re-evaluate thresholds on merged metrics. A malformed
// expression is an error wrapping threshold.ErrExpression.
func EvaluateThreshold(expr string, m Metric) (observed float64, ok bool, found bool, err error) {
	t, err := threshold.ParseExpression(expr)
	if err != nil {
		return 0, false, false, fmt.Errorf("evaluate on a merged metric: %w", err)
	}
	observed, found = m.Value(t.Aggregation.String())
	if !found {
		return 0, false, false, nil
	}
	return observed, t.Compare(observed), true, nil
}
