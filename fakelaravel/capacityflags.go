package fakelaravel

import (
	"flag"
	"fmt"
	"strconv"
	"time"
)

// CapacityFlag is one parameter of the capacity model as a flag of bin/fakelaravel: its name, its
// help and the CapacityModel field it sets, declared once in CapacityFlags. Its default is the
// calibration's (DefaultCalibration), its range CapacityModel.Validate's; Arg writes it for a
// harness that starts bin/fakelaravel, Capacity reads it from a harness's YAML by its Key.
type CapacityFlag struct {
	// Name is the flag's name without the dash, e.g. "workers" or "bootstrap-cpu".
	Name string
	// Key is the parameter's key where a harness writes the model in YAML (a scenario's laravel
	// block, Capacity), e.g. "workers" or "bootstrap".
	Key string
	// Usage is the flag's help text.
	Usage string
	// field points at the parameter in m: a *float64, *int or *time.Duration.
	field func(m *CapacityModel) any
}

// CapacityFlags lists every capacity model flag of bin/fakelaravel.
func CapacityFlags() []CapacityFlag {
	return []CapacityFlag{
		{"cores", "cores", "CPU cores available to PHP-FPM; 0 = every worker has its own core", func(m *CapacityModel) any { return &m.Cores }},
		{"bootstrap-cpu", "bootstrap", "CPU per request for the framework bootstrap", func(m *CapacityModel) any { return &m.BootstrapCPU }},
		{"lookup-cpu", "lookup", "CPU per read (GET session lookup) in place of -bootstrap-cpu; 0 = same as -bootstrap-cpu, which it follows when only -bootstrap-cpu is given",
			func(m *CapacityModel) any { return &m.LookupCPU }},
		{"per-row-cpu", "perRow", "CPU per written row (batch item)", func(m *CapacityModel) any { return &m.PerRowCPU }},
		{"jitter", "jitter", "CPU demand varies uniformly by +-jitter (0 <= jitter < 1)", func(m *CapacityModel) any { return &m.Jitter }},
		{"lock-wait-share", "lockWaitShare", "share of writes that wait -lock-wait for the database's write lock (no CPU used)", func(m *CapacityModel) any { return &m.LockWaitShare }},
		{"lock-wait", "lockWait", "how long a write that finds the write lock taken waits", func(m *CapacityModel) any { return &m.LockWait }},
		{"lock-hold", "lockHold", "in place of -lock-wait: the hold of the write lock a waiting write finds, at a random point of it; it polls as SQLite's busy handler does (sleeps 1, 2, 5, 10 ms ...) until the hold is over (0 = -lock-wait)",
			func(m *CapacityModel) any { return &m.LockHold }},
		{"workers", "workers", "PHP-FPM workers (pm.max_children)", func(m *CapacityModel) any { return &m.Workers }},
		{"backlog", "backlog", "FPM listen.backlog; requests beyond it get 502 at once", func(m *CapacityModel) any { return &m.Backlog }},
		{"proxy-timeout", "proxyTimeout", "nginx fastcgi_read_timeout; slower answers become 504 (0 = none)", func(m *CapacityModel) any { return &m.ProxyTimeout }},
	}
}

// Register defines the flag on fs; parsing it sets m's field, whose value now is the default.
func (f CapacityFlag) Register(fs *flag.FlagSet, m *CapacityModel) {
	switch p := f.field(m).(type) {
	case *float64:
		fs.Float64Var(p, f.Name, *p, f.Usage)
	case *int:
		fs.IntVar(p, f.Name, *p, f.Usage)
	case *time.Duration:
		fs.DurationVar(p, f.Name, *p, f.Usage)
	default:
		panic(fmt.Sprintf("fakelaravel: capacity flag %s of type %T", f.Name, p))
	}
}

// Copy sets dst's parameter to src's.
func (f CapacityFlag) Copy(dst, src *CapacityModel) {
	switch p := f.field(dst).(type) {
	case *float64:
		*p = *f.field(src).(*float64)
	case *int:
		*p = *f.field(src).(*int)
	case *time.Duration:
		*p = *f.field(src).(*time.Duration)
	default:
		panic(fmt.Sprintf("fakelaravel: capacity flag %s of type %T", f.Name, p))
	}
}

// Arg is the command-line argument giving m's value of the parameter, e.g. "-workers=8".
func (f CapacityFlag) Arg(m CapacityModel) string {
	var v string
	switch p := f.field(&m).(type) {
	case *float64:
		v = strconv.FormatFloat(*p, 'f', -1, 64)
	case *int:
		v = strconv.Itoa(*p)
	case *time.Duration:
		v = p.String()
	default:
		panic(fmt.Sprintf("fakelaravel: capacity flag %s of type %T", f.Name, p))
	}
	return "-" + f.Name + "=" + v
}
