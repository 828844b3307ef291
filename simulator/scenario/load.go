package scenario

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"wagate/fakelaravel"
	"wagate/gateway/config"
	"wagate/reports"
	"wagate/simulator/executor"
	"wagate/simulator/metrics"
	"wagate/simulator/threshold"
)

// Error is one problem with a scenario file: where it is (file, line, field) and what is wrong.
type Error struct {
	File    string
	Line    int
	Field   string
	Problem string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Problem)
	return b.String()
}

// ErrInvalid is wrapped by every error Load returns for a bad file or override.
var ErrInvalid = errors.New("invalid scenario")

var scenarioName = regexp.MustCompile(`^[0-9a-zA-Z_-]+$`)

// Load reads the scenario file at path, applies overrides ("key.path=value", as given to -set),
// fills defaults and validates. All problems found are returned together (errors.Join of *Error,
// each also matching ErrInvalid).
func Load(path string, overrides []string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read scenario: %w", err)
	}
	return Parse(path, data, overrides)
}

type invalid struct{ errs []error }

func (v *invalid) add(file string, line int, field, format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("%w", &Error{File: file, Line: line, Field: field, Problem: fmt.Sprintf(format, args...)}))
}

func (v *invalid) err() error {
	if len(v.errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalid, errors.Join(v.errs...))
}

// Parse is Load on data already read; name is the file name used in messages.
func Parse(name string, data []byte, overrides []string) (*File, error) {
	var doc yaml.Node
	bad := &invalid{}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line, msg := splitYAMLError(err)
		bad.add(name, line, "", "not valid YAML: %s", msg)
		return nil, bad.err()
	}
	if len(doc.Content) == 0 {
		bad.add(name, 0, "", "the file is empty; a scenario needs at least 'scenarios'")
		return nil, bad.err()
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		bad.add(name, root.Line, "", "the file must be a mapping of fields (name, scenarios, gateway, ...), not a %s", reports.YAMLKind(root))
		return nil, bad.err()
	}
	for _, o := range overrides {
		if err := applyOverride(root, o); err != nil {
			bad.add(name, 0, "", "-set %s: %v", o, err)
		}
	}
	if err := bad.err(); err != nil {
		return nil, err
	}
	fields := map[int]string{}
	checkFields(root, reflect.TypeOf(File{}), "", name, bad, fields)
	if err := bad.err(); err != nil {
		return nil, err
	}
	var f File
	if err := root.Decode(&f); err != nil {
		var ye *reports.YAMLError
		var te *yaml.TypeError
		switch {
		case errors.As(err, &ye):
			bad.add(name, ye.Line, fields[ye.Line], "%s", ye.Msg)
		case errors.As(err, &te):
			for _, e := range te.Errors {
				line, msg := splitYAMLError(errors.New(e))
				bad.add(name, line, fields[line], "%s", friendlyTypeError(msg))
			}
		default:
			bad.add(name, 0, "", "%v", err)
		}
		return nil, bad.err()
	}
	f.Path, f.Overrides = name, overrides
	if f.Name == "" {
		f.Name = strings.TrimSuffix(filepath.Base(name), filepath.Ext(name))
	}
	f.finish(root, bad)
	if err := bad.err(); err != nil {
		return nil, err
	}
	return &f, nil
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

func splitYAMLError(err error) (int, string) {
	msg := strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n  ")
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n, m[2]
	}
	return 0, strings.TrimPrefix(msg, "yaml: ")
}

var typeErr = regexp.MustCompile("^cannot unmarshal !!(\\w+) `(.*)` into (.+)$")

func friendlyTypeError(msg string) string {
	m := typeErr.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	want := m[3]
	switch {
	case strings.HasPrefix(want, "int"), strings.HasPrefix(want, "uint"):
		want = "a whole number"
	case strings.HasPrefix(want, "float"):
		want = "a number"
	case want == "bool":
		want = "true or false"
	case want == "string":
		want = "a text value"
	case strings.HasPrefix(want, "map"), strings.HasPrefix(want, "scenario."):
		want = "a mapping of fields"
	case strings.HasPrefix(want, "[]"):
		want = "a list"
	}
	return fmt.Sprintf("%q is not %s", m[2], want)
}

// checkFields walks the YAML tree against the Go types, reporting unknown fields with the
// known ones, and records which field each line holds (for later messages).
func checkFields(n *yaml.Node, t reflect.Type, path, file string, bad *invalid, fields map[int]string) {
	if strings.Count(path, ".")+strings.Count(path, "[") > 12 || len(bad.errs) > 50 {
		return // deeper than any scenario field: decoding reports what is wrong
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode {
		return // aliases are checked where their anchor is defined
	}
	if path != "" {
		if _, seen := fields[n.Line]; !seen {
			fields[n.Line] = path
		}
	}
	switch t {
	case reflect.TypeOf(Duration(0)), reflect.TypeOf(ThresholdList(nil)), reflect.TypeOf(Gateway{}):
		return // the gateway block's keys are the gateway's own: finishGateway checks them
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			if t == reflect.TypeOf(Dist{}) {
				return // a plain duration
			}
			bad.add(file, n.Line, path, "expected a mapping of fields, found a %s", reports.YAMLKind(n))
			return
		}
		known := map[string]reflect.StructField{}
		var names []string
		for i := 0; i < t.NumField(); i++ {
			sf := t.Field(i)
			tag := strings.Split(sf.Tag.Get("yaml"), ",")[0]
			if tag == "" || tag == "-" {
				continue
			}
			known[tag] = sf
			names = append(names, tag)
		}
		if t == reflect.TypeOf(Laravel{}) {
			// The capacity parameters are fakelaravel's keys: finishLaravel decodes them.
			for _, f := range fakelaravel.CapacityFlags() {
				known[f.Key] = reflect.StructField{Type: reflect.TypeOf("")}
				names = append(names, f.Key)
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := joinPath(path, k.Value)
			fields[k.Line] = p
			sf, ok := known[k.Value]
			if !ok {
				hint := ""
				if s := closest(k.Value, names); s != "" {
					hint = fmt.Sprintf(" (did you mean %q?)", s)
				}
				bad.add(file, k.Line, p, "unknown field%s; known fields here: %s", hint, strings.Join(names, ", "))
				continue
			}
			checkFields(v, sf.Type, p, file, bad, fields)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			if n.Tag == "!!null" {
				return
			}
			bad.add(file, n.Line, path, "expected a mapping, found a %s", reports.YAMLKind(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := joinPath(path, k.Value)
			fields[k.Line] = p
			checkFields(v, t.Elem(), p, file, bad, fields)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			if n.Tag == "!!null" {
				return
			}
			bad.add(file, n.Line, path, "expected a list, found a %s", reports.YAMLKind(n))
			return
		}
		for i, c := range n.Content {
			checkFields(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), file, bad, fields)
		}
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// closest returns the known name nearest to s (case-insensitive edit distance <= 2), or "".
func closest(s string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if d := editDistance(strings.ToLower(s), strings.ToLower(n)); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// applyOverride sets key.path=value in the YAML tree, creating mappings as needed.
func applyOverride(root *yaml.Node, o string) error {
	key, value, ok := strings.Cut(o, "=")
	key = strings.TrimSpace(key)
	if !ok || key == "" {
		return fmt.Errorf("write it as key=value, e.g. gateway.mode=batch")
	}
	var vdoc yaml.Node
	if err := yaml.Unmarshal([]byte(value), &vdoc); err != nil {
		return fmt.Errorf("value %q is not valid YAML: %w", value, err)
	}
	var vnode *yaml.Node
	if len(vdoc.Content) > 0 {
		vnode = vdoc.Content[0]
	} else {
		vnode = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: ""}
	}
	n := root
	parts := strings.Split(key, ".")
	for i, p := range parts {
		if n.Kind != yaml.MappingNode {
			return fmt.Errorf("%s is not a mapping", strings.Join(parts[:i], "."))
		}
		var next *yaml.Node
		for j := 0; j+1 < len(n.Content); j += 2 {
			if n.Content[j].Value == p {
				next = n.Content[j+1]
				if i == len(parts)-1 {
					n.Content[j+1] = vnode
				}
			}
		}
		if next == nil {
			k := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: p}
			if i == len(parts)-1 {
				n.Content = append(n.Content, k, vnode)
				return nil
			}
			next = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			n.Content = append(n.Content, k, next)
		}
		n = next
	}
	return nil
}

// lineOf finds the line of a dotted field path in the tree (0 when absent).
func lineOf(root *yaml.Node, path ...string) int {
	n := root
	line := 0
	for _, p := range path {
		if n == nil || n.Kind != yaml.MappingNode {
			return line
		}
		var next *yaml.Node
		for j := 0; j+1 < len(n.Content); j += 2 {
			if n.Content[j].Value == p {
				line = n.Content[j].Line
				next = n.Content[j+1]
			}
		}
		if next == nil {
			return line
		}
		n = next
	}
	return line
}

func mappingKeys(root *yaml.Node, path ...string) map[string]bool {
	n := root
	for _, p := range path {
		var next *yaml.Node
		for j := 0; n != nil && n.Kind == yaml.MappingNode && j+1 < len(n.Content); j += 2 {
			if n.Content[j].Value == p {
				next = n.Content[j+1]
			}
		}
		n = next
	}
	keys := map[string]bool{}
	if n != nil && n.Kind == yaml.MappingNode {
		for j := 0; j+1 < len(n.Content); j += 2 {
			keys[n.Content[j].Value] = true
		}
	}
	return keys
}

// finish fills defaults and validates everything that decoding does not.
func (f *File) finish(root *yaml.Node, bad *invalid) {
	file := f.Path
	if f.Users < 0 {
		bad.add(file, lineOf(root, "users"), "users", "the number of users can't be negative")
	}
	if f.Drain == 0 && !mappingKeys(root)["drain"] {
		f.Drain = Duration(15 * time.Second)
	}
	if f.Drain < 0 {
		bad.add(file, lineOf(root, "drain"), "drain", "can't be negative")
	}
	if f.SeriesInterval == 0 {
		f.SeriesInterval = Duration(10 * time.Second)
	}
	if f.SeriesInterval < Duration(time.Second) {
		bad.add(file, lineOf(root, "seriesInterval"), "seriesInterval", "must be at least 1s")
	}
	if f.Seed == 0 {
		f.Seed = 1
	}
	// Behaviour: defaults, then the file's, then each scenario's.
	base := DefaultBehaviour().merge(&f.Behaviour)
	if err := base.validate(); err != nil {
		field, msg := splitField(err.Error())
		bad.add(file, lineOf(root, "behaviour", field), "behaviour."+field, "%s", msg)
	}
	f.Behaviour = base

	if len(f.Scenarios) == 0 {
		bad.add(file, lineOf(root, "scenarios"), "scenarios", "at least one scenario is needed, e.g. scenarios: {users: {executor: constant-vus, vus: 10, duration: 1m}}")
	}
	names := make([]string, 0, len(f.Scenarios))
	for n := range f.Scenarios {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s := f.Scenarios[n]
		field := "scenarios." + n
		if !scenarioName.MatchString(n) {
			bad.add(file, lineOf(root, "scenarios", n), field, "scenario names can only contain letters, digits, '-' and '_' (like k6's)")
		}
		if s == nil {
			bad.add(file, lineOf(root, "scenarios", n), field, "the scenario is empty; it needs at least an executor")
			continue
		}
		s.set = mappingKeys(root, "scenarios", n)
		s.Config = s.executorConfig(f.Users)
		if err := s.Config.Validate(); err != nil {
			sub, msg := splitField(err.Error())
			bad.add(file, lineOf(root, "scenarios", n, sub), field+"."+sub, "%s", msg)
		}
		s.Model = base.merge(s.Behaviour)
		if err := s.Model.validate(); err != nil {
			sub, msg := splitField(err.Error())
			bad.add(file, lineOf(root, "scenarios", n, "behaviour", sub), field+".behaviour."+sub, "%s", msg)
		}
	}
	if q := f.Quiet; q != nil {
		// One whole series interval must fall in it, whatever the intervals' phase.
		if q.At < 0 || q.Duration < 2*f.SeriesInterval {
			bad.add(file, lineOf(root, "quiet"), "quiet", "at can't be negative and duration must be at least two series intervals (%s), so that one whole interval falls in the window", 2*f.SeriesInterval)
		}
	}
	f.finishGateway(root, bad)
	f.finishLaravel(root, bad)
	f.finishCPUs(root, bad)
	for i, flt := range f.Faults {
		field := fmt.Sprintf("faults[%d]", i)
		line := 0
		if fl := faultNode(root, i); fl != nil {
			line = fl.Line
		}
		if flt.At < 0 || flt.Duration < 0 {
			bad.add(file, line, field, "at and duration can't be negative")
		}
		if flt.faultKinds() != 1 {
			bad.add(file, line, field, "give exactly one of laravel (faults to set) or whatsapp (an action), or process (an action)")
		}
		if key, err := flt.Process.validate(f.Gateway.Replicas); err != nil {
			bad.add(file, line, field+".process."+key, "%v", err)
		}
		if err := flt.Laravel.validate(); err != nil {
			bad.add(file, line, field+".laravel", "%v", err)
		}
		if w := flt.WhatsApp; w != nil {
			switch w.Action {
			case "drop", "replace", "logout", "restart", "down", "silent", "handshake-cut":
			default:
				bad.add(file, line, field+".whatsapp.action", "%q is not an action; use drop, replace, logout, restart, down, silent or handshake-cut", w.Action)
			}
			if w.Share != nil && (*w.Share <= 0 || *w.Share > 1) {
				bad.add(file, line, field+".whatsapp.share", "%v is not a share; use a number above 0 and up to 1", *w.Share)
			}
		}
		if flt.Name == "" {
			f.Faults[i].Name = field
		}
	}
	f.finishThresholds(root, bad)
	for _, st := range f.SummaryTrendStats {
		if st == "count" {
			continue
		}
		if _, err := threshold.ParseExpression(st + "<0"); err != nil || st == "rate" || st == "value" {
			bad.add(file, lineOf(root, "summaryTrendStats"), "summaryTrendStats", "%q is not a trend stat; use avg, min, med, max, count or p(N)", st)
		}
	}
}

func faultNode(root *yaml.Node, i int) *yaml.Node {
	for j := 0; j+1 < len(root.Content); j += 2 {
		if root.Content[j].Value == "faults" && root.Content[j+1].Kind == yaml.SequenceNode && i < len(root.Content[j+1].Content) {
			return root.Content[j+1].Content[i]
		}
	}
	return nil
}

// splitField splits "field: message" as the executor and behaviour validators write them.
func splitField(s string) (string, string) {
	field, msg, ok := strings.Cut(s, ": ")
	if !ok || strings.ContainsAny(field, " \"") {
		return "", s
	}
	return field, msg
}

func (s *Scenario) executorConfig(users int64) executor.Config {
	c := executor.Config{
		Executor:         s.Executor,
		StartTime:        s.StartTime.Std(),
		GracefulStop:     s.GracefulStop.Std(),
		Iterations:       s.Iterations,
		MaxDuration:      s.MaxDuration.Std(),
		Duration:         s.Duration.Std(),
		GracefulRampDown: s.GracefulRampDown.Std(),
		Rate:             s.Rate,
		StartRate:        s.StartRate,
		TimeUnit:         s.TimeUnit.Std(),
		Set:              map[string]bool{},
	}
	for k := range s.set {
		c.Set[k] = true
	}
	if s.VUs != nil {
		c.VUs = *s.VUs
	} else if users > 0 {
		c.VUs, c.Set["vus"] = users, true
	}
	if s.StartVUs != nil {
		c.StartVUs = *s.StartVUs
	}
	if s.PreAllocatedVUs != nil {
		c.PreAllocatedVUs = *s.PreAllocatedVUs
	} else if users > 0 {
		c.PreAllocatedVUs, c.Set["preAllocatedVUs"] = users, true
	}
	if s.MaxVUs != nil {
		c.MaxVUs = *s.MaxVUs
	} else if users > 0 && (s.Executor == executor.ConstantArrivalRate || s.Executor == executor.RampingArrivalRate) {
		c.MaxVUs, c.Set["maxVUs"] = max(users, c.PreAllocatedVUs), true
	}
	if s.Iterations == 0 && s.Executor == executor.SharedIterations && users > 0 && !s.set["iterations"] {
		c.Iterations, c.Set["iterations"] = users, true
	}
	for _, st := range s.Stages {
		c.Stages = append(c.Stages, executor.Stage{Duration: st.Duration.Std(), Target: st.Target})
	}
	return c.WithDefaults()
}

// Gateway modes (the gateway's) and Redis choices.
const (
	ModeLegacy    = config.ModeLegacy
	ModeBatch     = config.ModeBatch
	RedisEmbedded = "embedded"
	RedisServer   = "server"
)

// exampleRun stands for what a run gives the gateway when Load validates the gateway block.
var exampleRun = GatewayRun{Addr: "127.0.0.1:1", APIToken: "scenario-example-api-token", LaravelURL: "http://127.0.0.1:2",
	LaravelToken: "scenario-example-laravel-token", DataDir: "data", WADial: "127.0.0.1:3", WARootPubKey: strings.Repeat("01", 32)}

// finishGateway decodes the gateway block's settings with gateway/config (over its defaults in
// batch mode) and validates them as the gateway would with what a run gives it; problems name the
// gateway's key (gateway.batchSize).
func (f *File) finishGateway(root *yaml.Node, bad *invalid) {
	g := &f.Gateway
	file := f.Path
	g.Config = config.Default()
	g.Mode = ModeBatch
	var ok bool
	if g.Set, ok = f.decodeBlock(root, "gateway", simulatorKeys, &g.Config, bad); !ok {
		return
	}
	perRun := PerRun(&g.Config)
	for _, k := range g.Set {
		for _, field := range perRun {
			if g.Key(field) == k {
				bad.add(file, lineOf(root, "gateway", k), "gateway."+k, "given by the simulator to each gateway it starts (addresses, tokens, the data folder, Redis: see gateway.redis, the test-only WhatsApp dial)")
			}
		}
	}
	if g.Redis == "" {
		g.Redis = RedisEmbedded
	}
	run := exampleRun
	switch {
	case g.Redis == RedisServer:
		run.RedisURL = "redis://127.0.0.1:4"
	case g.Redis != RedisEmbedded && !strings.HasPrefix(g.Redis, "redis://") && !strings.HasPrefix(g.Redis, "rediss://"):
		bad.add(file, lineOf(root, "gateway", "redis"), "gateway.redis", "%q: use embedded, server or a redis:// URL", g.Redis)
	case g.Redis != RedisEmbedded:
		run.RedisURL = g.Redis
	}
	switch {
	case g.Replicas == 0:
		g.Replicas = 1
	case g.Replicas < 0 || g.Replicas > MaxReplicas:
		bad.add(file, lineOf(root, "gateway", "replicas"), "gateway.replicas", "%d is out of range; use 1 to %d gateway processes", g.Replicas, MaxReplicas)
	case g.Cluster() && g.URL != "":
		bad.add(file, lineOf(root, "gateway", "replicas"), "gateway.replicas", "the simulator starts replicas itself; an external gateway (gateway.url) is one address")
	case g.Cluster() && g.Redis == RedisEmbedded:
		bad.add(file, lineOf(root, "gateway", "replicas"), "gateway.replicas", "%d replicas share one Redis: give redis: server (or a redis:// URL), never the embedded one", g.Replicas)
	case g.Cluster():
		run.GatewayID, run.AdvertiseURL, run.StoreDSN = "gateway-1", "http://127.0.0.1:1", "postgres://wagate@127.0.0.1:5/wagate"
	}
	if err := g.RunConfig(run).ValidateFile(); err != nil {
		for _, e := range joined(err) {
			key, problem, _ := strings.Cut(e.Error(), ": ")
			bad.add(file, lineOf(root, "gateway", key), "gateway."+key, "%s", problem)
		}
	}
	for _, v := range []struct {
		key, value string
		err        error
	}{{"gogc", g.GOGC, validGOGC(g.GOGC)}, {"gomemlimit", g.GOMEMLIMIT, validGOMEMLIMIT(g.GOMEMLIMIT)},
		{"gomaxprocs", g.GOMAXPROCS, validGOMAXPROCS(g.GOMAXPROCS)}} {
		switch {
		case v.err != nil:
			bad.add(file, lineOf(root, "gateway", v.key), "gateway."+v.key, "%v", v.err)
		case g.URL != "" && v.value != "":
			bad.add(file, lineOf(root, "gateway", v.key), "gateway."+v.key, "an external gateway (gateway.url) runs with its own environment; the simulator sets it only on the gateways it starts")
		}
	}
	if g.URL != "" && g.Token == "" {
		bad.add(file, lineOf(root, "gateway", "url"), "gateway.token", "an external gateway (gateway.url) needs its API token")
	}
}

// decodeBlock decodes the keys of root's block that are not the simulator's own (own) into
// another component's configuration (the gateway's, fakelaravel's capacity model), which refuses
// keys and values it does not know; keys are the block's keys it decoded, in order, and ok false
// when it refused some (each named as block.key on its line).
func (f *File) decodeBlock(root *yaml.Node, block string, own []string, into yaml.Unmarshaler, bad *invalid) (keys []string, ok bool) {
	sub := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	if n := child(root, block); n != nil && n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i].Value; !slices.Contains(own, k) {
				sub.Content = append(sub.Content, n.Content[i], n.Content[i+1])
				keys = append(keys, k)
			}
		}
	}
	err := into.UnmarshalYAML(sub)
	for _, e := range joined(err) {
		var ge *config.KeyError
		var fe *fakelaravel.CapacityKeyError
		switch {
		case e == nil:
		case errors.As(e, &ge):
			bad.add(f.Path, ge.Line, block+"."+ge.Key, "%s", ge.Problem)
		case errors.As(e, &fe):
			bad.add(f.Path, fe.Line, block+"."+fe.Key, "%s", fe.Problem)
		default:
			bad.add(f.Path, lineOf(root, block), block, "%v", e)
		}
	}
	return keys, err == nil
}

// joined lists the errors errors.Join put together (err itself otherwise).
func joined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// child is the value of key in the mapping n, or nil.
func child(n *yaml.Node, key string) *yaml.Node {
	for j := 0; n != nil && n.Kind == yaml.MappingNode && j+1 < len(n.Content); j += 2 {
		if n.Content[j].Value == key {
			return n.Content[j+1]
		}
	}
	return nil
}

// laravelKeys are the laravel block's keys that are the simulator's; the others are the
// capacity model's (fakelaravel's keys).
var laravelKeys = []string{"real", "faults", "flags", "url", "token", "adminToken"}

// realLaravelKeys are the capacity parameters the real app has too (pm.max_children,
// listen.backlog, fastcgi_read_timeout): laravel.real passes them to laravel/scripts/up.sh.
var realLaravelKeys = []string{"workers", "backlog", "proxyTimeout"}

func (f *File) finishLaravel(root *yaml.Node, bad *invalid) {
	l := &f.Laravel
	file := f.Path
	l.Capacity = fakelaravel.DefaultCapacity()
	if _, ok := f.decodeBlock(root, "laravel", laravelKeys, &l.Capacity, bad); ok {
		if err := l.Capacity.Validate(); err != nil {
			bad.add(file, lineOf(root, "laravel"), "laravel", "%v", err)
		}
	}
	if err := l.Faults.validate(); err != nil {
		bad.add(file, lineOf(root, "laravel", "faults"), "laravel.faults", "%v", err)
	}
	if lf := l.Faults; lf != nil && (lf.RedirectTo != "" || lf.BadBodyRate > 0 || lf.UnaccountedRate > 0 || len(lf.RefuseSessions) > 0) {
		bad.add(file, lineOf(root, "laravel", "faults"), "laravel.faults",
			"redirectTo, badBodyRate, unaccountedRate and refuseSessions are timed faults: put them in the fault schedule (faults:)")
	}
	if l.URL != "" && l.Token == "" {
		bad.add(file, lineOf(root, "laravel", "url"), "laravel.token", "an external fakelaravel (laravel.url) needs its token")
	}
	if l.Real {
		for _, k := range l.Capacity.Set {
			if !slices.Contains(realLaravelKeys, k) {
				bad.add(file, lineOf(root, "laravel", k), "laravel."+k, "a model setting, and laravel.real runs the real app, whose CPU costs are its own: remove it")
			}
		}
		if l.URL != "" {
			bad.add(file, lineOf(root, "laravel", "url"), "laravel.url", "laravel.real starts the real app for the run; an external fakelaravel (laravel.url) can't be used with it")
		}
	}
}

func (f *File) finishThresholds(root *yaml.Node, bad *invalid) {
	keys := make([]string, 0, len(f.Thresholds))
	for k := range f.Thresholds {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		line := lineOf(root, "thresholds", k)
		set, err := threshold.Parse(k, f.Thresholds[k])
		if err != nil {
			bad.add(f.Path, line, "thresholds", "%v", err)
			continue
		}
		info, ok := metrics.Catalog[set.Key.Metric]
		if !ok {
			hint := ""
			names := make([]string, 0, len(metrics.Catalog))
			for n := range metrics.Catalog {
				names = append(names, n)
			}
			sort.Strings(names)
			if c := closest(set.Key.Metric, names); c != "" {
				hint = fmt.Sprintf(" (did you mean %q?)", c)
			}
			bad.add(f.Path, line, "thresholds", "invalid threshold defined on %s; reason: no metric name %q found%s", k, set.Key.Metric, hint)
			continue
		}
		if err := set.CheckType(info.Type); err != nil {
			bad.add(f.Path, line, "thresholds", "%v", err)
			continue
		}
		f.ThresholdSets = append(f.ThresholdSets, set)
	}
}
