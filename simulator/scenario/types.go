package scenario

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"wagate/reports"
	"wagate/simulator/threshold"
)

// Duration is a time.Duration written like k6 writes them: "500ms", "30s", "1m30s" (a bare 0
// too). It is the reports' Duration, which bench matrices and report.json use as well.
type Duration = reports.Duration

// Dist is a random duration: a fixed value ("5s"), uniform between min and max
// ({min: 2s, max: 8s}) or exponential with a mean ({mean: 10m}, optionally shifted by min).
type Dist struct {
	Min  Duration `yaml:"min"`
	Max  Duration `yaml:"max"`
	Mean Duration `yaml:"mean"`
}

// UnmarshalYAML reads a fixed duration or a {min, max} / {mean} mapping.
func (d *Dist) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		var v Duration
		if err := v.UnmarshalYAML(n); err != nil {
			return err
		}
		*d = Dist{Min: v, Max: v}
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return lineError(n, "expected a duration or {min, max} or {mean}, found a %s", reports.YAMLKind(n))
	}
	type plain Dist
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*d = Dist(p)
	if d.Mean == 0 && d.Max == 0 {
		d.Max = d.Min
	}
	return nil
}

func (d *Dist) validate(field string) error {
	if d.Min < 0 || d.Max < 0 || d.Mean < 0 {
		return fmt.Errorf("%s: durations can't be negative", field)
	}
	if d.Mean == 0 && d.Max < d.Min {
		return fmt.Errorf("%s: max (%s) can't be less than min (%s)", field, d.Max, d.Min)
	}
	if d.Mean > 0 && d.Max > 0 && d.Max < d.Min {
		return fmt.Errorf("%s: max (%s) can't be less than min (%s)", field, d.Max, d.Min)
	}
	return nil
}

// Sample draws one duration.
func (d Dist) Sample(r *rand.Rand) time.Duration {
	if d.Mean > 0 {
		v := d.Min.Std() + time.Duration(r.ExpFloat64()*float64(d.Mean))
		if d.Max > 0 && v > d.Max.Std() {
			v = d.Max.Std()
		}
		return v
	}
	if d.Max <= d.Min {
		return d.Min.Std()
	}
	return d.Min.Std() + time.Duration(r.Int64N(int64(d.Max-d.Min)))
}

// MeanDuration is the distribution's expected value.
func (d Dist) MeanDuration() time.Duration {
	if d.Mean > 0 {
		return d.Min.Std() + d.Mean.Std()
	}
	return (d.Min.Std() + d.Max.Std()) / 2
}

// String renders the distribution for logs and reports.
func (d Dist) String() string {
	switch {
	case d.Mean > 0:
		return "exp(mean " + d.Mean.String() + ")"
	case d.Min == d.Max:
		return d.Min.String()
	default:
		return d.Min.String() + ".." + d.Max.String()
	}
}

// UnmarshalYAML reads the gateway block's simulator keys (redis, url, token); the gateway's own
// settings beside them are decoded by Load (finishGateway), which names their problems.
func (g *Gateway) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return lineError(n, "expected a mapping of the gateway's settings, found a %s", reports.YAMLKind(n))
	}
	var own struct {
		Redis     string `yaml:"redis"`
		URL       string `yaml:"url"`
		Token     string `yaml:"token"`
		Replicas  int    `yaml:"replicas"`
		GoRuntime `yaml:",inline"`
	}
	if err := n.Decode(&own); err != nil {
		return err
	}
	g.Redis, g.URL, g.Token, g.Replicas, g.GoRuntime = own.Redis, own.URL, own.Token, own.Replicas, own.GoRuntime
	return nil
}

// UnmarshalYAML reads a list of thresholds (strings or {threshold, abortOnFail, delayAbortEval}),
// or a single string.
func (l *ThresholdList) UnmarshalYAML(n *yaml.Node) error {
	items := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		items = n.Content
	}
	var out ThresholdList
	for _, it := range items {
		switch it.Kind {
		case yaml.ScalarNode:
			out = append(out, threshold.Definition{Threshold: it.Value})
		case yaml.MappingNode:
			var obj struct {
				Threshold      string   `yaml:"threshold"`
				AbortOnFail    bool     `yaml:"abortOnFail"`
				DelayAbortEval Duration `yaml:"delayAbortEval"`
			}
			if err := decodeStrict(it, &obj); err != nil {
				return err
			}
			if obj.Threshold == "" {
				return lineError(it, "a threshold object needs a 'threshold' field, e.g. {threshold: 'p(95)<50', abortOnFail: true}")
			}
			out = append(out, threshold.Definition{Threshold: obj.Threshold, AbortOnFail: obj.AbortOnFail, DelayAbortEval: obj.DelayAbortEval.Std()})
		default:
			return lineError(it, "a threshold is a string like 'p(95)<50' or an object {threshold, abortOnFail, delayAbortEval}")
		}
	}
	*l = out
	return nil
}

func decodeStrict(n *yaml.Node, v any) error {
	// yaml.v3 has no strict mode on Node.Decode: re-encode and decode with KnownFields.
	b, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return lineError(n, "%s", strings.TrimPrefix(strings.ReplaceAll(err.Error(), "yaml: unmarshal errors:\n  ", ""), "yaml: "))
	}
	return nil
}

// lineError is a decoding problem found on n's line, placed by the loader like a malformed
// duration.
func lineError(n *yaml.Node, format string, args ...any) error {
	return &reports.YAMLError{Line: n.Line, Msg: fmt.Sprintf(format, args...)}
}
