package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// The gateway's YAML configuration file (-config FILE or WAGATE_CONFIG): a mapping of settings by
// their YAML key, one key per setting of the settings table (the flag name in camelCase,
// batch-interval: batchInterval, as `gateway -help` lists them). A scenario's gateway block is such
// a file too: the simulator decodes it into a Config, validates it here and writes it for the
// gateway it starts.

// YAMLKey is a setting's YAML key derived from its flag name: the words between the -s (or _s) in
// camelCase (batch-interval: batchInterval, cache-ttl-qr: cacheTtlQr). It is the key style of every
// file a person writes beside the gateway's (scenarios and bench matrices, like k6's options and
// Kubernetes'), whose refusals of a snake_case key name the key meant with it.
func YAMLKey(flag string) string {
	var b strings.Builder
	upper := false
	for _, r := range flag {
		switch {
		case r == '-' || r == '_':
			upper = b.Len() > 0
		case upper:
			b.WriteRune(unicode.ToUpper(r))
			upper = false
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// KeyError is a problem with one key of a YAML configuration: a key that is no setting, or a
// value that is not one.
type KeyError struct {
	// Key is the key as written; Line is its line in the YAML document (0 when unknown).
	Key  string
	Line int
	// Problem says what is wrong, e.g. `"x" is not a duration (e.g. 500ms, 5s, 2m)`.
	Problem string
}

// Error implements error.
func (e *KeyError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s (line %d): %s", e.Key, e.Line, e.Problem)
	}
	return e.Key + ": " + e.Problem
}

// UnmarshalYAML applies a YAML configuration over c: each key of the mapping sets its setting,
// and keys left out keep c's values (decode into Default() for a file's configuration). A key
// that is no setting is refused naming the nearest one; every problem is a *KeyError, all of them
// joined.
func (c *Config) UnmarshalYAML(n *yaml.Node) error {
	_, err := c.applyNode(n)
	return err
}

// applyNode is UnmarshalYAML returning the keys it set, in the document's order.
func (c *Config) applyNode(n *yaml.Node) ([]string, error) {
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, &KeyError{Line: n.Line, Problem: "the gateway's configuration is a mapping of settings (key: value)"}
	}
	all := settings()
	byKey := map[string]setting{}
	var keys []string
	for _, s := range all {
		byKey[s.yamlName()] = s
		keys = append(keys, s.yamlName())
	}
	var given []string
	var errs []error
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		s, ok := byKey[k.Value]
		switch {
		case !ok:
			errs = append(errs, &KeyError{Key: k.Value, Line: k.Line,
				Problem: fmt.Sprintf("not a gateway setting; did you mean %s? (gateway -help lists every setting)", nearest(k.Value, keys))})
		case v.Kind != yaml.ScalarNode:
			errs = append(errs, &KeyError{Key: k.Value, Line: v.Line, Problem: "must be a single value"})
		case slices.Contains(given, k.Value):
			errs = append(errs, &KeyError{Key: k.Value, Line: k.Line, Problem: "set twice"})
		default:
			value := v.Value
			if v.Tag == "!!null" {
				value = ""
			}
			if err := set(s.value(c), value); err != nil {
				errs = append(errs, &KeyError{Key: k.Value, Line: v.Line, Problem: err.Error()})
				continue
			}
			given = append(given, k.Value)
		}
	}
	return given, errors.Join(errs...)
}

// applyYAML applies a YAML configuration file's data over cfg and returns the keys it set.
func applyYAML(cfg *Config, data []byte) ([]string, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	return cfg.applyNode(&doc)
}

// Setting is one setting of a configuration as its YAML file writes it.
type Setting struct {
	// Key is the setting's YAML key; Value its value as text ("5s", "50", "true").
	Key   string
	Value string
}

// Settings lists c's settings in the table's order as a YAML file writes them, leaving out the
// secrets and the fields leaveOut points at (pointers into c, e.g. &c.Addr).
func (c *Config) Settings(leaveOut ...any) []Setting {
	var out []Setting
	for _, s := range settings() {
		v := s.value(c)
		if s.secret || slices.Contains(leaveOut, v) {
			continue
		}
		out = append(out, Setting{Key: s.yamlName(), Value: render(v)})
	}
	return out
}

// YAML writes c as the gateway's YAML configuration file: Settings(leaveOut...), one key per line
// in the table's order. Secrets are never written: pass them in the environment (Environ).
func (c *Config) YAML(leaveOut ...any) []byte {
	doc := &yaml.Node{Kind: yaml.MappingNode}
	kinds := map[string]string{}
	for _, s := range settings() {
		switch s.value(c).(type) {
		case *int:
			kinds[s.yamlName()] = "!!int"
		case *bool:
			kinds[s.yamlName()] = "!!bool"
		default:
			kinds[s.yamlName()] = "!!str"
		}
	}
	for _, s := range c.Settings(leaveOut...) {
		doc.Content = append(doc.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s.Key},
			&yaml.Node{Kind: yaml.ScalarNode, Tag: kinds[s.Key], Value: s.Value})
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		panic(fmt.Sprintf("config: writing YAML: %v", err)) // scalars only: cannot fail
	}
	return out
}

// Environ returns the environment variables (WAGATE_NAME=value) that give a gateway process the
// values of the settings fields points at (pointers into c, e.g. &c.APIToken): how a parent passes
// what it does not write to the file, such as secrets.
func (c *Config) Environ(fields ...any) []string {
	var env []string
	for _, s := range settings() {
		if v := s.value(c); slices.Contains(fields, v) {
			env = append(env, s.envName()+"="+render(v))
		}
	}
	return env
}

// Secrets returns pointers to c's secret settings (tokens, the HMAC secret, URLs and DSNs that may
// carry passwords), for Environ.
func (c *Config) Secrets() []any {
	var out []any
	for _, s := range settings() {
		if s.secret {
			out = append(out, s.value(c))
		}
	}
	return out
}

// Key returns the YAML key of the setting field points at (a pointer into c, e.g. &c.Mode).
func (c *Config) Key(field any) string {
	for _, s := range settings() {
		if s.value(c) == field {
			return s.yamlName()
		}
	}
	panic(fmt.Sprintf("config: %T is no setting's field", field))
}
