package reports

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrThreshold reports a threshold expression that cannot be parsed.
var ErrThreshold = errors.New("threshold")

// thresholdOps are k6's comparison operators, longest first so "<=" is not read as "<".
var thresholdOps = []string{"<=", ">=", "===", "==", "!=", "<", ">"}

// EvaluateThreshold evaluates a k6 threshold expression ("<agg> <op> <value>", e.g. "p(95)<50",
// "count==0", "rate < 0.01") against a metric summary. It returns the observed aggregate, whether
// the threshold held, and whether the aggregate exists for the metric. The simulator owns the full
// threshold language (tag filters, abortOnFail); this is the part Merge needs to re-evaluate
// thresholds on merged metrics.
func EvaluateThreshold(expr string, m Metric) (observed float64, ok bool, found bool, err error) {
	agg, op, want, err := parseThreshold(expr)
	if err != nil {
		return 0, false, false, err
	}
	observed, found = m.Value(agg)
	if !found {
		return 0, false, false, nil
	}
	switch op {
	case "<":
		ok = observed < want
	case "<=":
		ok = observed <= want
	case ">":
		ok = observed > want
	case ">=":
		ok = observed >= want
	case "==", "===":
		ok = observed == want
	case "!=":
		ok = observed != want
	}
	return observed, ok, true, nil
}

func parseThreshold(expr string) (agg, op string, value float64, err error) {
	s := strings.TrimSpace(expr)
	for i := 0; i < len(s); i++ {
		for _, o := range thresholdOps {
			if strings.HasPrefix(s[i:], o) {
				agg = strings.TrimSpace(s[:i])
				rest := strings.TrimSpace(s[i+len(o):])
				v, perr := strconv.ParseFloat(rest, 64)
				if agg == "" || perr != nil {
					return "", "", 0, fmt.Errorf("%w: %q: want <aggregation> <operator> <number>, e.g. p(95)<50", ErrThreshold, expr)
				}
				return agg, o, v, nil
			}
		}
	}
	return "", "", 0, fmt.Errorf("%w: %q: no operator (one of < <= > >= == === !=)", ErrThreshold, expr)
}
