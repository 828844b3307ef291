package fakelaravel

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Capacity is a capacity model as a harness writes it (a scenario's laravel block): the
// parameters it gives, by their keys (CapacityFlag.Key: cores, workers, backlog, bootstrap,
// perRow, jitter, proxyTimeout, lookup, lockWaitShare, lockWait, lockHold), over the embedded
// calibration's model. Args passes exactly the given parameters to bin/fakelaravel, which merges
// them with its calibration as for any command line.
type Capacity struct {
	// Model is the calibration's model (DefaultCapacityModel) with the given parameters.
	Model CapacityModel
	// Set are the keys of the parameters given, in the order given.
	Set []string
}

// DefaultCapacity is the calibration's model with no parameter given.
func DefaultCapacity() Capacity { return Capacity{Model: DefaultCapacityModel()} }

// CapacityKeyError is a problem with one key of a capacity model written in YAML.
type CapacityKeyError struct {
	// Key is the key as written; Line its line in the YAML document.
	Key  string
	Line int
	// Problem says what is wrong.
	Problem string
}

// Error implements error.
func (e *CapacityKeyError) Error() string {
	return fmt.Sprintf("%s (line %d): %s", e.Key, e.Line, e.Problem)
}

// UnmarshalYAML applies a mapping of parameters by key over c; every key must be a capacity
// parameter's, every value one of its type (a number or a duration such as 5600us). Problems are
// *CapacityKeyError, all of them joined. It does not check ranges: see Validate.
func (c *Capacity) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return &CapacityKeyError{Line: n.Line, Problem: "the capacity model is a mapping of parameters (key: value)"}
	}
	flags := CapacityFlags()
	var keys []string
	for _, f := range flags {
		keys = append(keys, f.Key)
	}
	var errs []error
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		j := slices.IndexFunc(flags, func(f CapacityFlag) bool { return f.Key == k.Value })
		switch {
		case j < 0:
			errs = append(errs, &CapacityKeyError{Key: k.Value, Line: k.Line, Problem: "not a capacity parameter; use one of " + fmt.Sprint(keys)})
		case v.Kind != yaml.ScalarNode:
			errs = append(errs, &CapacityKeyError{Key: k.Value, Line: v.Line, Problem: "must be a single value"})
		case slices.Contains(c.Set, k.Value):
			errs = append(errs, &CapacityKeyError{Key: k.Value, Line: k.Line, Problem: "given twice"})
		default:
			if err := flags[j].parse(&c.Model, v.Value); err != nil {
				errs = append(errs, &CapacityKeyError{Key: k.Value, Line: v.Line, Problem: err.Error()})
				continue
			}
			c.Set = append(c.Set, k.Value)
		}
	}
	return errors.Join(errs...)
}

// parse sets the parameter in m from its text.
func (f CapacityFlag) parse(m *CapacityModel, raw string) error {
	switch p := f.field(m).(type) {
	case *float64:
		v, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", raw)
		}
		*p = v
	case *int:
		v, err := strconv.Atoi(raw)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", raw)
		}
		*p = v
	case *time.Duration:
		v, err := time.ParseDuration(raw)
		if err != nil {
			return fmt.Errorf("%q is not a duration; write it like 5600us, 6ms or 60s", raw)
		}
		*p = v
	default:
		panic(fmt.Sprintf("fakelaravel: capacity flag %s of type %T", f.Name, p))
	}
	return nil
}

// given is the table's rows of the parameters c gives, in the table's order.
func (c Capacity) given() []CapacityFlag {
	var out []CapacityFlag
	for _, f := range CapacityFlags() {
		if slices.Contains(c.Set, f.Key) {
			out = append(out, f)
		}
	}
	return out
}

// Args are bin/fakelaravel's command-line arguments of the parameters c gives ("-workers=8").
func (c Capacity) Args() []string {
	var args []string
	for _, f := range c.given() {
		args = append(args, f.Arg(c.Model))
	}
	return args
}

// Given is the model of the parameters c gives, the others zero (for a harness whose zero means
// "the default", such as the real app's settings).
func (c Capacity) Given() CapacityModel {
	var m CapacityModel
	for _, f := range c.given() {
		f.Copy(&m, &c.Model)
	}
	return m
}

// Settings are the parameters c gives as their keys and values written as in YAML ("8", "6ms").
func (c Capacity) Settings() map[string]string {
	if len(c.Set) == 0 {
		return nil
	}
	out := map[string]string{}
	for _, f := range c.given() {
		_, v, _ := strings.Cut(f.Arg(c.Model), "=")
		out[f.Key] = v
	}
	return out
}

// WithWorkers is c giving n workers (the real app's pm.max_children, when a harness reports it).
func (c Capacity) WithWorkers(n int) Capacity {
	c.Model.Workers = n
	for _, f := range CapacityFlags() {
		if f.field(&c.Model) == &c.Model.Workers && !slices.Contains(c.Set, f.Key) {
			c.Set = append(slices.Clone(c.Set), f.Key)
		}
	}
	return c
}

// Validate checks the model with the given parameters (CapacityModel.Validate), naming the first
// parameter out of range.
func (c Capacity) Validate() error { return c.Model.Validate() }
