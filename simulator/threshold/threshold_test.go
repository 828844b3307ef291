package threshold

import (
	"errors"
	"strings"
	"testing"
)

func TestParseKeyWithTagFilters(t *testing.T) {
	k, err := ParseKey("http_req_duration{ endpoint:status, scenario:churn }")
	if err != nil {
		t.Fatal(err)
	}
	if k.Metric != "http_req_duration" || k.Tags["endpoint"] != "status" || k.Tags["scenario"] != "churn" {
		t.Errorf("ParseKey = %+v", k)
	}
	if got := k.String(); got != "http_req_duration{endpoint:status,scenario:churn}" {
		t.Errorf("String = %q", got)
	}
	if !k.Matches(map[string]string{"endpoint": "status", "scenario": "churn", "status": "200"}) || k.Matches(map[string]string{"endpoint": "qr"}) {
		t.Error("Matches is wrong")
	}
	for _, bad := range []string{"9lives", "http_req_duration{endpoint}", "x{a:1", "a{}"} {
		if _, err := ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) accepted", bad)
		}
	}
}

func TestParseExpressions(t *testing.T) {
	cases := map[string]Threshold{
		"p(95)<500":     {Aggregation: Aggregation{"p", 95}, Operator: "<", Value: 500},
		"p(99.9) <= 10": {Aggregation: Aggregation{"p", 99.9}, Operator: "<=", Value: 10},
		"count==0":      {Aggregation: Aggregation{Method: "count"}, Operator: "==", Value: 0},
		"rate < 0.01":   {Aggregation: Aggregation{Method: "rate"}, Operator: "<", Value: 0.01},
		"avg!=3":        {Aggregation: Aggregation{Method: "avg"}, Operator: "!=", Value: 3},
		"value===1":     {Aggregation: Aggregation{Method: "value"}, Operator: "===", Value: 1},
		"max>=-1.5":     {Aggregation: Aggregation{Method: "max"}, Operator: ">=", Value: -1.5},
	}
	for src, want := range cases {
		got, err := ParseExpression(src)
		if err != nil {
			t.Errorf("ParseExpression(%q): %v", src, err)
			continue
		}
		if got.Aggregation != want.Aggregation || got.Operator != want.Operator || got.Value != want.Value {
			t.Errorf("ParseExpression(%q) = %+v, want %+v", src, got, want)
		}
	}
}

func TestParseErrorsSayWhatIsWrong(t *testing.T) {
	cases := map[string]string{
		"p95<500":    `"p95" is not an aggregation method`,
		"p(95)":      "has no comparison operator",
		"p(95)<":     "missing the value",
		"p(95)<<500": "malformed operator",
		"p(101)<5":   "between 0 and 100",
		"avg<fast":   `"fast" is not a number`,
	}
	for src, want := range cases {
		_, err := ParseExpression(src)
		if err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, ErrExpression) {
			t.Errorf("ParseExpression(%q) = %v, want it to say %q and wrap ErrExpression", src, err, want)
		}
	}
}

func TestAggregationMustSuitTheMetricType(t *testing.T) {
	s, err := Parse("lost_updates", []Definition{{Threshold: "count==0"}, {Threshold: "p(95)<1"}})
	if err != nil {
		t.Fatal(err)
	}
	err = s.CheckType(Counter)
	if err == nil || !strings.Contains(err.Error(), `invalid threshold defined on lost_updates; reason: threshold 1 ("p(95)<1") uses the aggregation method "p(95)"`) {
		t.Errorf("CheckType = %v", err)
	}
	if err := s.CheckType(Trend); err == nil {
		t.Error("count accepted on a trend")
	}
}

type fakeValues struct {
	typ string
	v   map[string]float64
}

func (f fakeValues) Type() string { return f.typ }
func (f fakeValues) Value(a Aggregation) (float64, bool) {
	v, ok := f.v[a.String()]
	return v, ok
}

func TestEvaluate(t *testing.T) {
	s, err := Parse("http_req_duration{endpoint:status}", []Definition{
		{Threshold: "p(95)<50"}, {Threshold: "avg<10", AbortOnFail: true}, {Threshold: "max<1000"},
	})
	if err != nil {
		t.Fatal(err)
	}
	res := s.Evaluate(fakeValues{Trend, map[string]float64{"p(95)": 42, "avg": 12, "max": 2000}})
	if len(res) != 3 || !res[0].OK || res[1].OK || !res[1].Abort || res[2].OK || res[2].Abort {
		t.Errorf("Evaluate = %+v", res)
	}
	if res[0].Key != "http_req_duration{endpoint:status}" || res[0].Value != 42 {
		t.Errorf("result names %q value %v", res[0].Key, res[0].Value)
	}
	// A counter nobody incremented counts as 0: count==0 holds, count>0 fails.
	c, _ := Parse("lost_updates", []Definition{{Threshold: "count==0"}, {Threshold: "count>0"}})
	res = c.Evaluate(nil)
	if !res[0].OK || res[1].OK {
		t.Errorf("empty counter: %+v", res)
	}
}

func FuzzParseExpression(f *testing.F) {
	for _, s := range []string{"p(95)<500", "count==0", "rate<0.01", "p(99.99)>=1e3", "<", "p(", "avg==="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		th, err := ParseExpression(s)
		if err != nil {
			return
		}
		// Whatever parses must round-trip through its parts.
		again, err := ParseExpression(th.Aggregation.String() + th.Operator + strconvFormat(th.Value))
		if err != nil || again.Aggregation != th.Aggregation || again.Operator != th.Operator {
			t.Fatalf("%q parsed to %+v but its rendering does not parse back: %v", s, th, err)
		}
	})
}

func FuzzParseKey(f *testing.F) {
	for _, s := range []string{"http_req_duration{endpoint:status}", "a{b:c,d:e}", "x{"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKey(s)
		if err != nil {
			return
		}
		if _, err := ParseKey(k.String()); err != nil && !strings.ContainsAny(k.String(), ",:{}") {
			t.Fatalf("%q -> %q does not parse back: %v", s, k.String(), err)
		}
	})
}
