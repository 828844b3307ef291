// Package threshold owns k6's threshold language: keys with tag filters
// ('http_req_duration{endpoint:status}'), expressions '<aggregation> <operator> <value>'
// ('p(95)<50', 'count==0', 'rate<0.01'), the object form with abortOnFail and delayAbortEval,
// which aggregations each metric type allows, and evaluation against measured values.
package threshold

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Metric types, as k6 names them.
const (
	Counter = "counter"
	Gauge   = "gauge"
	Rate    = "rate"
	Trend   = "trend"
)

var metricName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]{1,128}$`)

// Key names the (sub)metric a threshold applies to: a metric and an optional tag filter.
type Key struct {
	Metric string
	// Tags filters the metric's samples to those carrying every tag with that value.
	Tags map[string]string
}

// String renders the key canonically, as k6 names submetrics: name{a:1,b:2} with tags sorted.
func (k Key) String() string {
	if len(k.Tags) == 0 {
		return k.Metric
	}
	names := make([]string, 0, len(k.Tags))
	for n := range k.Tags {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + ":" + k.Tags[n]
	}
	return k.Metric + "{" + strings.Join(parts, ",") + "}"
}

// ParseKey reads "metric" or "metric{tag:value,...}".
func ParseKey(s string) (Key, error) {
	s = strings.TrimSpace(s)
	name, rest, hasTags := strings.Cut(s, "{")
	name = strings.TrimSpace(name)
	if !metricName.MatchString(name) {
		return Key{}, fmt.Errorf("%q is not a valid metric name (letters, digits and _, starting with a letter or _, 2 to 129 characters)", name)
	}
	k := Key{Metric: name}
	if !hasTags {
		return k, nil
	}
	if !strings.HasSuffix(rest, "}") {
		return Key{}, fmt.Errorf("%q: the tag filter must end with '}'", s)
	}
	rest = strings.TrimSuffix(rest, "}")
	if strings.TrimSpace(rest) == "" {
		return Key{}, fmt.Errorf("%q: the tag filter is empty", s)
	}
	k.Tags = map[string]string{}
	for _, pair := range strings.Split(rest, ",") {
		tag, value, ok := strings.Cut(pair, ":")
		tag, value = strings.TrimSpace(tag), strings.TrimSpace(value)
		if !ok || tag == "" {
			return Key{}, fmt.Errorf("%q: tag filter %q must be written tag:value", s, strings.TrimSpace(pair))
		}
		k.Tags[tag] = strings.Trim(value, `"'`)
	}
	return k, nil
}

// Matches reports whether a sample with tags passes the key's filter.
func (k Key) Matches(tags map[string]string) bool {
	for n, v := range k.Tags {
		if tags[n] != v {
			return false
		}
	}
	return true
}

// Aggregation is how a metric's samples are reduced before comparing: count, rate, value, avg,
// min, med, max or p(N).
type Aggregation struct {
	Method     string  // "count", "rate", "value", "avg", "min", "med", "max" or "p"
	Percentile float64 // for "p": 0..100
}

// String renders the aggregation as written in k6 ("p(95)").
func (a Aggregation) String() string {
	if a.Method == "p" {
		return "p(" + strconv.FormatFloat(a.Percentile, 'f', -1, 64) + ")"
	}
	return a.Method
}

// allowed lists the aggregations each metric type supports, as in k6.
var allowed = map[string][]string{
	Counter: {"count", "rate"},
	Gauge:   {"value"},
	Rate:    {"rate"},
	Trend:   {"avg", "min", "med", "max", "p"},
}

// SupportedBy reports whether a metric of type metricType can be reduced by a.
func (a Aggregation) SupportedBy(metricType string) bool {
	for _, m := range allowed[metricType] {
		if m == a.Method {
			return true
		}
	}
	return false
}

// Operators in the order they must be tried when scanning (longest first).
var operators = []string{"===", "==", "!=", "<=", ">=", "<", ">"}

// Threshold is one parsed expression of a Key.
type Threshold struct {
	// Source is the expression as written.
	Source      string
	Aggregation Aggregation
	Operator    string
	Value       float64
	// AbortOnFail stops the run as soon as the threshold fails (after DelayAbortEval).
	AbortOnFail    bool
	DelayAbortEval time.Duration
}

// ErrExpression is wrapped by every error of ParseExpression: the expression is not
// '<aggregation> <operator> <value>'.
var ErrExpression = errors.New("threshold")

var aggPattern = regexp.MustCompile(`^(count|rate|value|avg|min|med|max|p\(\s*([0-9]+(?:\.[0-9]+)?)\s*\))$`)

// ParseExpression reads "<aggregation> <operator> <value>", spaces optional.
func ParseExpression(s string) (Threshold, error) {
	src := s
	s = strings.TrimSpace(s)
	var op string
	idx := -1
	for i := 0; i < len(s) && idx < 0; i++ {
		for _, o := range operators {
			if strings.HasPrefix(s[i:], o) {
				op, idx = o, i
				break
			}
		}
	}
	if idx < 0 {
		return Threshold{}, fmt.Errorf("%w %q has no comparison operator; write it as '<aggregation> <operator> <value>', e.g. 'p(95)<500', with one of %s", ErrExpression, src, strings.Join(operators, " "))
	}
	left := strings.TrimSpace(s[:idx])
	right := strings.TrimSpace(s[idx+len(op):])
	m := aggPattern.FindStringSubmatch(left)
	if m == nil {
		return Threshold{}, fmt.Errorf("%w %q: %q is not an aggregation method; use count, rate, value, avg, min, med, max or p(N)", ErrExpression, src, left)
	}
	agg := Aggregation{Method: m[1]}
	if m[2] != "" {
		p, _ := strconv.ParseFloat(m[2], 64)
		if p < 0 || p > 100 {
			return Threshold{}, fmt.Errorf("%w %q: the percentile %s must be between 0 and 100", ErrExpression, src, m[2])
		}
		agg = Aggregation{Method: "p", Percentile: p}
	}
	if right == "" {
		return Threshold{}, fmt.Errorf("%w %q: missing the value to compare with after %q", ErrExpression, src, op)
	}
	if strings.ContainsAny(right, "<>=!") {
		return Threshold{}, fmt.Errorf("%w %q: malformed operator", ErrExpression, src)
	}
	v, err := strconv.ParseFloat(right, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return Threshold{}, fmt.Errorf("%w %q: %q is not a number", ErrExpression, src, right)
	}
	return Threshold{Source: src, Aggregation: agg, Operator: op, Value: v}, nil
}

// Compare applies the threshold's operator: it passes when value <op> Value holds.
func (t Threshold) Compare(value float64) bool {
	switch t.Operator {
	case "<":
		return value < t.Value
	case "<=":
		return value <= t.Value
	case ">":
		return value > t.Value
	case ">=":
		return value >= t.Value
	case "==", "===":
		return value == t.Value
	case "!=":
		return value != t.Value
	}
	return false
}

// Definition is one entry of a key's threshold list: a plain string or k6's object form.
type Definition struct {
	Threshold      string
	AbortOnFail    bool
	DelayAbortEval time.Duration
}

// Set is every threshold of one key.
type Set struct {
	Key        Key
	Thresholds []Threshold
}

// Parse reads one entry of a thresholds map.
func Parse(key string, defs []Definition) (Set, error) {
	k, err := ParseKey(key)
	if err != nil {
		return Set{}, err
	}
	if len(defs) == 0 {
		return Set{}, fmt.Errorf("%s: no threshold expressions given", key)
	}
	set := Set{Key: k}
	for _, d := range defs {
		t, err := ParseExpression(d.Threshold)
		if err != nil {
			return Set{}, fmt.Errorf("%s: %w", key, err)
		}
		if d.DelayAbortEval < 0 {
			return Set{}, fmt.Errorf("%s: threshold %q: delayAbortEval can't be negative", key, d.Threshold)
		}
		t.AbortOnFail, t.DelayAbortEval = d.AbortOnFail, d.DelayAbortEval
		set.Thresholds = append(set.Thresholds, t)
	}
	return set, nil
}

// CheckType reports an error when one of the set's aggregations is not supported by metricType,
// in the words k6 uses.
func (s Set) CheckType(metricType string) error {
	for i, t := range s.Thresholds {
		if !t.Aggregation.SupportedBy(metricType) {
			return fmt.Errorf("invalid threshold defined on %s; reason: threshold %d (%q) uses the aggregation method %q, which is not supported for metrics of type %s (supported: %s)",
				s.Key, i, t.Source, t.Aggregation, metricType, supportedList(metricType))
		}
	}
	return nil
}

func supportedList(metricType string) string {
	var out []string
	for _, m := range allowed[metricType] {
		if m == "p" {
			m = "p(N)"
		}
		out = append(out, m)
	}
	return strings.Join(out, ", ")
}

// Values gives the aggregated values of one (sub)metric.
type Values interface {
	// Type is the metric type: Counter, Gauge, Rate or Trend.
	Type() string
	// Value reduces the metric's samples by a; ok is false when there is no sample.
	Value(a Aggregation) (v float64, ok bool)
}

// Result is one threshold's outcome.
type Result struct {
	Key       string
	Source    string
	OK        bool
	Value     float64
	HasValue  bool
	Abort     bool // AbortOnFail was set and the threshold failed
	Threshold Threshold
}

// Evaluate checks every threshold of s against v. A metric without samples is compared as 0 for
// counters and rates (nothing counted) and passes otherwise, as k6 does for empty trends; nil v
// means the metric was never emitted.
func (s Set) Evaluate(v Values) []Result {
	out := make([]Result, 0, len(s.Thresholds))
	for _, t := range s.Thresholds {
		r := Result{Key: s.Key.String(), Source: t.Source, Threshold: t}
		var value float64
		var ok bool
		if v != nil {
			value, ok = v.Value(t.Aggregation)
		}
		if !ok && (t.Aggregation.Method == "count" || t.Aggregation.Method == "rate") {
			value, ok = 0, true
		}
		r.Value, r.HasValue = value, ok
		r.OK = !ok || t.Compare(value)
		r.Abort = !r.OK && t.AbortOnFail
		out = append(out, r)
	}
	return out
}
