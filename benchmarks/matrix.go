// Package benchmarks owns the bench matrices (benchmarks/*.yaml) and the orchestrator behind
// `make bench`, `make bench-quick` and `make bench-capacity`: it runs every matrix entry through
// `bin/simulator run` as a child process in its own process group (fresh processes and stores per
// run), collects the report.json files into one folder per bench run under reports/out/, kills every
// process it started on success, failure and Ctrl-C, searches capacity (step up, then bisect) and
// renders report.md and report.html over all entries.
package benchmarks

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"wagate/gateway/config"
	"wagate/reports"
	"wagate/simulator/cpuset"
)

// ErrMatrix reports an invalid bench matrix.
var ErrMatrix = errors.New("bench matrix")

// Matrix is a bench matrix file: entries (scenario x gateway configuration overrides x repeats)
// and, optionally, capacity searches.
type Matrix struct {
	// Name is the matrix's name, e.g. "default".
	Name string `yaml:"name"`
	// Description says what the matrix is for.
	Description string `yaml:"description"`
	// Repeats is the default number of repeats per entry (1 when unset).
	Repeats int `yaml:"repeats"`
	// Timeout bounds one simulator run; it is killed after it (default 10m).
	Timeout reports.Duration `yaml:"timeout"`
	// CPUs puts every run's gateway on its own CPU set and the world on the rest:
	// `cpus: {gateway: auto}` (the last CPU for the gateway when the machine has two or more, nothing
	// pinned with one, said in the report) or CPU lists (`cpus: {gateway: "1", world: "0"}`). It is
	// passed to every entry and capacity probe as `-set cpus.gateway=... -set cpus.world=...` before
	// the entry's own overrides, so an entry can say `cpus.gateway=off`.
	CPUs MatrixCPUs `yaml:"cpus"`
	// SeedTable names the entries of the seed table's measured columns.
	SeedTable reports.SeedRoles `yaml:"seedTable"`
	// Entries run in order.
	Entries []Entry `yaml:"entries"`
	// Capacity lists capacity searches run by `make bench-capacity`.
	Capacity []Capacity `yaml:"capacity"`
	// NDJSON makes the matrix's simulator runs write metrics.ndjson, every request and sample
	// as a point (~680 MB and ~10% of the load generator's CPU in a batch-1000 run). Off, runs
	// get -no-ndjson: only what reads the file wants it (faults.yaml: bin/faults-report).
	NDJSON bool `yaml:"ndjson"`
}

// MatrixCPUs is a matrix's CPU sets (see simulator/cpuset) and the nice of the world's servers
// (`serversNice`, scenario cpus.serversNice: 10 by default where the sets pin, 0 leaves them at
// the load generator's priority).
type MatrixCPUs struct {
	Gateway     string `yaml:"gateway"`
	World       string `yaml:"world"`
	ServersNice *int   `yaml:"serversNice"`
}

// overrides are the -set pairs that pass the CPU sets to a run.
func (c MatrixCPUs) overrides() []string {
	var set []string
	if c.Gateway != "" {
		set = append(set, "cpus.gateway="+c.Gateway)
	}
	if c.World != "" {
		set = append(set, "cpus.world="+c.World)
	}
	if c.ServersNice != nil {
		set = append(set, "cpus.serversNice="+strconv.Itoa(*c.ServersNice))
	}
	return set
}

// onlineCPUs lists the CPUs a bench may use; ParseMatrix checks cpus against them. Tests replace it.
var onlineCPUs = cpuset.Online

// Entry is one matrix entry.
type Entry struct {
	// Name is unique in the matrix: letters, digits, '-', '_' and '.'.
	Name string `yaml:"name"`
	// Scenario is the scenario file, relative to the repository root.
	Scenario string `yaml:"scenario"`
	// Set are `key=value` overrides passed as `-set key=value`, in order.
	Set []string `yaml:"set"`
	// Repeats overrides the matrix's Repeats.
	Repeats int `yaml:"repeats"`
	// Kind is "run" (the default: `simulator run`, the world against the gateway), "floor"
	// (`simulator floor`: the scenario's status poll workload against the bare net/http floor on
	// the gateway's CPU set, whose CPU per request the report compares with the gateway's) or
	// "k6-cost" (`simulator k6-cost SCRIPT.js`: the script and its world's native users on one
	// world, the k6 runtime's CPU per request and memory per VU as thresholds).
	Kind string `yaml:"kind"`
}

// Entry kinds.
const (
	KindRun    = "run"
	KindFloor  = "floor"
	KindK6Cost = "k6-cost"
)

// Capacity is one capacity search: the largest user count for which every threshold holds.
type Capacity struct {
	// Name is unique among the searches, e.g. "legacy".
	Name string `yaml:"name"`
	// Mode is the gateway mode searched (reported; set it through Set too).
	Mode string `yaml:"mode"`
	// Scenario and Set are as for entries; UsersKey=<n> is appended to Set for each probe.
	Scenario string   `yaml:"scenario"`
	Set      []string `yaml:"set"`
	// UsersKey is the override key for the user count (default "users").
	UsersKey string `yaml:"usersKey"`
	// Start is the first probe's user count; Factor multiplies it while every threshold holds
	// (default 2), up to Limit.
	Start  int     `yaml:"start"`
	Factor float64 `yaml:"factor"`
	Limit  int     `yaml:"limit"`
	// Precision ends the bisection when the bracket is narrower than Precision x the lower bound
	// (default 0.1), and never narrower than Granularity users (default 10).
	Precision   float64 `yaml:"precision"`
	Granularity int     `yaml:"granularity"`
}

var namePattern = regexp.MustCompile(`^[0-9A-Za-z_.-]+$`)

// LoadMatrix reads and validates a matrix file.
func LoadMatrix(path string) (*Matrix, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMatrix, err)
	}
	m, err := ParseMatrix(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// ParseMatrix decodes and validates a matrix document, filling defaults.
func ParseMatrix(data []byte) (*Matrix, error) {
	var m Matrix
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&m); err != nil {
		var doc yaml.Node
		if yaml.Unmarshal(data, &doc) == nil {
			if snake := snakeKeys(&doc); len(snake) > 0 {
				return nil, fmt.Errorf("%w: %s", ErrMatrix, strings.Join(snake, "; "))
			}
		}
		return nil, fmt.Errorf("%w: %w", ErrMatrix, err)
	}
	if m.Repeats == 0 {
		m.Repeats = 1
	}
	if m.Timeout == 0 {
		m.Timeout = reports.Duration(10 * time.Minute)
	}
	var problems []string
	if m.Repeats < 0 {
		problems = append(problems, "repeats must be at least 1")
	}
	if m.CPUs != (MatrixCPUs{}) {
		if online, err := onlineCPUs(); err != nil {
			problems = append(problems, fmt.Sprintf("cpus: can't read this machine's CPUs: %v", err))
		} else if _, err := cpuset.Resolve(m.CPUs.Gateway, m.CPUs.World, online); err != nil {
			problems = append(problems, strings.TrimPrefix(err.Error(), cpuset.ErrCPUs.Error()+": ")+" (cpus)")
		}
		if _, err := cpuset.ResolveNice(m.CPUs.ServersNice, true); err != nil {
			problems = append(problems, strings.TrimPrefix(err.Error(), cpuset.ErrCPUs.Error()+": ")+" (cpus)")
		}
	}
	seen := map[string]bool{}
	for i := range m.Entries {
		e := &m.Entries[i]
		where := fmt.Sprintf("entries[%d]", i)
		if e.Name != "" {
			where = fmt.Sprintf("entry %q", e.Name)
		}
		switch {
		case e.Name == "":
			problems = append(problems, where+": name is required")
		case !namePattern.MatchString(e.Name):
			problems = append(problems, where+": name may only contain letters, digits, '-', '_' and '.'")
		case seen[e.Name]:
			problems = append(problems, where+": name is used twice")
		}
		seen[e.Name] = true
		if e.Scenario == "" {
			problems = append(problems, where+": scenario is required")
		}
		if e.Repeats == 0 {
			e.Repeats = m.Repeats
		}
		if e.Kind == "" {
			e.Kind = KindRun
		}
		if e.Kind != KindRun && e.Kind != KindFloor && e.Kind != KindK6Cost {
			problems = append(problems, fmt.Sprintf("%s: kind %q is not run, floor or k6-cost", where, e.Kind))
		}
		if e.Repeats < 0 {
			problems = append(problems, where+": repeats must be at least 1")
		}
		problems = append(problems, checkSet(where, e.Set)...)
		e.Set = append(m.CPUs.overrides(), e.Set...)
	}
	for role, name := range map[string]string{"legacy": m.SeedTable.Legacy, "batch": m.SeedTable.Batch, "scale": m.SeedTable.Scale} {
		if name != "" && !seen[name] {
			problems = append(problems, fmt.Sprintf("seedTable.%s: no entry named %q", role, name))
		}
	}
	capSeen := map[string]bool{}
	for i := range m.Capacity {
		c := &m.Capacity[i]
		where := fmt.Sprintf("capacity[%d]", i)
		if c.Name != "" {
			where = fmt.Sprintf("capacity %q", c.Name)
		}
		if c.Name == "" || !namePattern.MatchString(c.Name) || capSeen[c.Name] {
			problems = append(problems, where+": needs a unique name of letters, digits, '-', '_' and '.'")
		}
		capSeen[c.Name] = true
		if c.Scenario == "" {
			problems = append(problems, where+": scenario is required")
		}
		if c.UsersKey == "" {
			c.UsersKey = "users"
		}
		if c.Factor == 0 {
			c.Factor = 2
		}
		if c.Precision == 0 {
			c.Precision = 0.1
		}
		if c.Granularity == 0 {
			c.Granularity = 10
		}
		if c.Start < 1 || c.Limit < c.Start {
			problems = append(problems, where+": need 1 <= start <= limit")
		}
		if c.Factor <= 1 {
			problems = append(problems, where+": factor must be more than 1")
		}
		problems = append(problems, checkSet(where, c.Set)...)
		c.Set = append(m.CPUs.overrides(), c.Set...)
	}
	if len(m.Entries) == 0 && len(m.Capacity) == 0 {
		problems = append(problems, "no entries and no capacity searches")
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrMatrix, strings.Join(problems, "; "))
	}
	return &m, nil
}

// snakeKeys names the snake_case keys of a matrix document with the camelCase key meant: a
// matrix's keys are camelCase like the scenarios' and the gateway's (seed_table is seedTable).
func snakeKeys(n *yaml.Node) []string {
	var out []string
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i].Value; strings.Contains(k, "_") {
				out = append(out, fmt.Sprintf("%s (line %d): matrix keys are camelCase; did you mean %s?", k, n.Content[i].Line, config.YAMLKey(k)))
			}
		}
	}
	for _, c := range n.Content {
		out = append(out, snakeKeys(c)...)
	}
	return out
}

func checkSet(where string, set []string) []string {
	var problems []string
	for _, kv := range set {
		if k, _, ok := strings.Cut(kv, "="); !ok || strings.TrimSpace(k) == "" {
			problems = append(problems, fmt.Sprintf("%s: set %q is not key=value", where, kv))
		}
	}
	return problems
}

// Runs is the total number of simulator runs of the matrix's entries.
func (m *Matrix) Runs() int {
	n := 0
	for _, e := range m.Entries {
		n += e.Repeats
	}
	return n
}

// CheckScenarios reports scenario files of the entries (or, with capacity, of the capacity
// searches) that do not exist, so a bench fails before its first run rather than in the middle.
func (m *Matrix) CheckScenarios(capacity bool) error {
	var missing []string
	seen := map[string]bool{}
	check := func(path string) {
		if seen[path] {
			return
		}
		seen[path] = true
		if _, err := os.Stat(path); err != nil {
			missing = append(missing, path)
		}
	}
	if capacity {
		for _, c := range m.Capacity {
			check(c.Scenario)
		}
	} else {
		for _, e := range m.Entries {
			check(e.Scenario)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: scenario files not found: %s", ErrMatrix, strings.Join(missing, ", "))
	}
	return nil
}
