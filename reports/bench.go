package reports

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// BenchFileName is the manifest the bench orchestrator writes at the top of a bench run folder.
const BenchFileName = "bench.json"

// Bench is the manifest of one `make bench` run: which matrix ran, its entries and where each
// repeat's report.json lives (paths relative to the bench folder).
type Bench struct {
	// SchemaVersion is the bench.json schema version (SchemaVersion when written by this package).
	SchemaVersion int `json:"schema_version"`
	// Matrix is the bench matrix file, e.g. "benchmarks/default.yaml".
	Matrix string `json:"matrix"`
	// Command is the command line that produced the bench run, e.g. "make bench".
	Command string `json:"command,omitempty"`
	// Start and End bound the bench run.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// SeedTable names the entries that fill the seed table's measured columns.
	SeedTable SeedRoles `json:"seed_table"`
	// Entries are the matrix entries in run order.
	Entries []BenchEntry `json:"entries"`
	// Capacity holds `make bench-capacity` searches, when that is what ran.
	Capacity []CapacityResult `json:"capacity,omitempty"`
	// CapacityFrom is the bench folder Capacity was copied from, relative to this one, when the
	// capacity search ran separately (`make bench-capacity` before `make bench`).
	CapacityFrom string `json:"capacity_from,omitempty"`
}

// SeedRoles names the bench entries compared in the seed table.
type SeedRoles struct {
	// Legacy is the "before" entry: legacy mode on the seed workload (100 users).
	Legacy string `json:"legacy,omitempty"`
	// Batch is the "after" entry on the same workload as Legacy.
	Batch string `json:"batch,omitempty"`
	// Scale is batch mode at the target scale (1000 users), where docs/design.md's targets are checked.
	Scale string `json:"scale,omitempty"`
}

// BenchEntry is one matrix entry: a scenario with configuration overrides, run Repeats times.
type BenchEntry struct {
	// Name is the entry's unique name, e.g. "batch-1000".
	Name string `json:"name"`
	// Scenario is the scenario file.
	Scenario string `json:"scenario"`
	// Set are the `-set key=value` overrides passed to the simulator.
	Set []string `json:"set,omitempty"`
	// Kind is "floor" for the poll workload against the bare net/http floor (`simulator floor`),
	// "" for a simulator run against the gateway.
	Kind string `json:"kind,omitempty"`
	// Runs are the entry's repeats, in order.
	Runs []BenchRun `json:"runs"`
}

// BenchRun is one repeat of an entry.
type BenchRun struct {
	// Dir is the simulator's output folder, relative to the bench folder.
	Dir string `json:"dir"`
	// ExitCode is the simulator's exit code (0 ok, 99 thresholds failed, -1 killed or not started).
	ExitCode int `json:"exit_code"`
	// Error describes a run that failed without producing a report.
	Error string `json:"error,omitempty"`
	// Elapsed is the run's wall-clock time.
	Elapsed Duration `json:"elapsed"`
	// LoadAverage is the machine's 1-minute load average when the run ended (/proc/loadavg): a
	// number well above the core count means other work competed with the run for CPU.
	LoadAverage float64 `json:"load_average,omitempty"`
}

// CapacityResult is the outcome of a capacity search for one configuration.
type CapacityResult struct {
	// Name is the searched configuration, e.g. "legacy" or "batch".
	Name string `json:"name"`
	// Mode is the gateway delivery mode.
	Mode string `json:"mode"`
	// MaxUsers is the largest user count for which every threshold held (0 when none did).
	MaxUsers int `json:"max_users"`
	// Limit is the search's upper bound; MaxUsers == Limit means the search did not find the edge.
	Limit int `json:"limit"`
	// Steps are the probes in the order they ran.
	Steps []CapacityStep `json:"steps"`
}

// CapacityStep is one probe of a capacity search.
type CapacityStep struct {
	Users int  `json:"users"`
	OK    bool `json:"ok"`
	// Dir is the probe's simulator output folder, relative to the bench folder.
	Dir string `json:"dir"`
	// Failed lists the thresholds that did not hold ("metric expr").
	Failed []string `json:"failed,omitempty"`
}

// SaveBench writes the manifest to dir/bench.json.
func SaveBench(dir string, b *Bench) error {
	if b.SchemaVersion == 0 {
		b.SchemaVersion = SchemaVersion
	}
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return fmt.Errorf("encode bench manifest: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, BenchFileName), append(data, '\n')); err != nil {
		return fmt.Errorf("save bench manifest: %w", err)
	}
	return nil
}

// Entry is a bench entry with the reports of its repeats that produced one.
type Entry struct {
	BenchEntry
	// Reports are the loaded report.json files of the entry's runs, in run order.
	Reports []*Report
}

// Results is what the renderings read: a bench manifest with every report loaded.
type Results struct {
	// Dir is the bench (or single run) folder.
	Dir string
	// Bench is the manifest (synthesised for a folder holding a single report.json).
	Bench Bench
	// Entries pair the manifest entries with their reports.
	Entries []Entry
}

// LoadResults reads a bench folder (bench.json plus the reports it names) or a single run folder
// (report.json) or a report.json file.
func LoadResults(path string) (*Results, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load results: %w", err)
	}
	if !fi.IsDir() || fileExists(filepath.Join(path, FileName)) && !fileExists(filepath.Join(path, BenchFileName)) {
		r, err := Load(path)
		if err != nil {
			return nil, err
		}
		dir := path
		if !fi.IsDir() {
			dir = filepath.Dir(path)
		}
		return SingleResults(dir, r), nil
	}
	data, err := os.ReadFile(filepath.Join(path, BenchFileName))
	if err != nil {
		return nil, fmt.Errorf("load results: %w", err)
	}
	res := &Results{Dir: path}
	if err := json.Unmarshal(data, &res.Bench); err != nil {
		return nil, fmt.Errorf("load results %s: %w", BenchFileName, err)
	}
	for _, be := range res.Bench.Entries {
		e := Entry{BenchEntry: be}
		for _, run := range be.Runs {
			rp := filepath.Join(path, run.Dir, FileName)
			if !fileExists(rp) {
				continue // the run failed before writing a report; bench.json says why
			}
			r, err := Load(rp)
			if err != nil {
				return nil, err
			}
			if r.Label == "" {
				r.Label = be.Name
			}
			e.Reports = append(e.Reports, r)
		}
		res.Entries = append(res.Entries, e)
	}
	return res, nil
}

// SingleResults wraps one report as results with a single entry.
func SingleResults(dir string, r *Report) *Results {
	name := r.Name()
	be := BenchEntry{Name: name, Scenario: r.Scenario.File, Set: r.Configuration.Overrides, Runs: []BenchRun{{Dir: "."}}}
	res := &Results{Dir: dir, Bench: Bench{SchemaVersion: SchemaVersion, Start: r.Environment.Start, End: r.Environment.End, Entries: []BenchEntry{be}}}
	res.Entries = []Entry{{BenchEntry: be, Reports: []*Report{r}}}
	return res
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Entry returns the entry with the given name.
func (res *Results) Entry(name string) (*Entry, bool) {
	for i := range res.Entries {
		if res.Entries[i].Name == name {
			return &res.Entries[i], true
		}
	}
	return nil, false
}

// Environment returns the environment of the first report (zero when there is none).
func (res *Results) Environment() Environment {
	for _, e := range res.Entries {
		if len(e.Reports) > 0 {
			return e.Reports[0].Environment
		}
	}
	return Environment{}
}

// roles resolves the seed table's entries: the manifest's SeedTable when set, else the first
// legacy entry, the batch entry with the same users, and the batch entry with the most users.
func (res *Results) roles() (legacy, batch, scale *Entry) {
	pick := func(name string) *Entry {
		if name == "" {
			return nil
		}
		e, _ := res.Entry(name)
		return e
	}
	legacy, batch, scale = pick(res.Bench.SeedTable.Legacy), pick(res.Bench.SeedTable.Batch), pick(res.Bench.SeedTable.Scale)
	for i := range res.Entries {
		e := &res.Entries[i]
		if len(e.Reports) == 0 {
			continue
		}
		if legacy == nil && e.Mode() == ModeLegacy {
			legacy = e
		}
	}
	for i := range res.Entries {
		e := &res.Entries[i]
		if len(e.Reports) == 0 || e.Mode() != ModeBatch {
			continue
		}
		if batch == nil && (legacy == nil || e.Users() == legacy.Users()) {
			batch = e
		}
		if res.Bench.SeedTable.Scale == "" && (scale == nil || e.Users() > scale.Users()) {
			scale = e
		}
	}
	return legacy, batch, scale
}

// Mode is the gateway mode of the entry's first report.
func (e *Entry) Mode() string {
	if len(e.Reports) == 0 {
		return ""
	}
	return e.Reports[0].Configuration.Gateway.Mode()
}

// Users is the simulated user count of the entry's first report.
func (e *Entry) Users() int {
	if len(e.Reports) == 0 {
		return 0
	}
	return e.Reports[0].Scenario.Users
}

// ThresholdsOK reports whether every threshold held in every repeat.
func (e *Entry) ThresholdsOK() bool {
	for _, r := range e.Reports {
		if !r.ThresholdsOK() {
			return false
		}
	}
	return len(e.Reports) > 0
}

// Samples returns fig's value in each repeat that has it.
func (e *Entry) Samples(fig Figure) []float64 {
	var out []float64
	for _, r := range e.Reports {
		if v, ok := fig.Of(r); ok {
			out = append(out, v)
		}
	}
	return out
}

// Median returns the median of fig over the entry's repeats.
func (e *Entry) Median(fig Figure) (float64, bool) {
	s := e.Samples(fig)
	if len(s) == 0 {
		return 0, false
	}
	return median(s), true
}

func median(values []float64) float64 {
	s := append([]float64(nil), values...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// ErrNoReports reports results without a single report to render.
var ErrNoReports = errors.New("no report.json found")
