package fakelaravel

import (
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func decodeCapacity(t *testing.T, doc string) (Capacity, error) {
	t.Helper()
	c := DefaultCapacity()
	err := yaml.Unmarshal([]byte(doc), &c)
	return c, err
}

// Each key of a harness's capacity block is one flag's: it sets that parameter, and Args passes
// exactly the parameters given, as bin/fakelaravel's flags.
func TestCapacityKeysAreTheFlagsTable(t *testing.T) {
	cases := []struct {
		yaml string
		arg  string
		ok   func(m CapacityModel) bool
	}{
		{"cores: 4", "-cores=4", func(m CapacityModel) bool { return m.Cores == 4 }},
		{"workers: 16", "-workers=16", func(m CapacityModel) bool { return m.Workers == 16 }},
		{"backlog: 511", "-backlog=511", func(m CapacityModel) bool { return m.Backlog == 511 }},
		{"bootstrap: 5600us", "-bootstrap-cpu=5.6ms", func(m CapacityModel) bool { return m.BootstrapCPU == 5600*time.Microsecond }},
		{"perRow: 200us", "-per-row-cpu=200µs", func(m CapacityModel) bool { return m.PerRowCPU == 200*time.Microsecond }},
		{"lookup: 3ms", "-lookup-cpu=3ms", func(m CapacityModel) bool { return m.LookupCPU == 3*time.Millisecond }},
		{"jitter: 0", "-jitter=0", func(m CapacityModel) bool { return m.Jitter == 0 }},
		{"proxyTimeout: 60s", "-proxy-timeout=1m0s", func(m CapacityModel) bool { return m.ProxyTimeout == time.Minute }},
		{"lockWaitShare: 0.02", "-lock-wait-share=0.02", func(m CapacityModel) bool { return m.LockWaitShare == 0.02 }},
		{"lockWait: 30ms", "-lock-wait=30ms", func(m CapacityModel) bool { return m.LockWait == 30*time.Millisecond }},
		{"lockHold: 50ms", "-lock-hold=50ms", func(m CapacityModel) bool { return m.LockHold == 50*time.Millisecond }},
	}
	for _, tc := range cases {
		c, err := decodeCapacity(t, tc.yaml)
		if err != nil || !tc.ok(c.Model) {
			t.Errorf("%q: err %v, model %+v", tc.yaml, err, c.Model)
			continue
		}
		if args := c.Args(); !slices.Equal(args, []string{tc.arg}) {
			t.Errorf("%q: args %q, want [%s]", tc.yaml, args, tc.arg)
		}
	}
	var keys []string
	for _, f := range CapacityFlags() {
		if f.Key == "" || slices.Contains(keys, f.Key) {
			t.Errorf("flag %s: key %q is missing or not its own", f.Name, f.Key)
		}
		keys = append(keys, f.Key)
	}
}

// Parameters not given keep the calibration's values and are not passed; Given and Settings show
// only what was given, in the table's order.
func TestCapacityPassesOnlyWhatWasGiven(t *testing.T) {
	c, err := decodeCapacity(t, "workers: 8\ncores: 2\n")
	if err != nil {
		t.Fatal(err)
	}
	def := DefaultCapacityModel()
	if c.Model.BootstrapCPU != def.BootstrapCPU || c.Model.Backlog != def.Backlog {
		t.Errorf("parameters not given changed: %+v", c.Model)
	}
	if args := c.Args(); !slices.Equal(args, []string{"-cores=2", "-workers=8"}) {
		t.Errorf("args %q", args)
	}
	if g := c.Given(); g != (CapacityModel{Cores: 2, Workers: 8}) {
		t.Errorf("given %+v", g)
	}
	if s := c.Settings(); len(s) != 2 || s["workers"] != "8" || s["cores"] != "2" {
		t.Errorf("settings %v", s)
	}
	real := c.WithWorkers(4)
	if real.Settings()["workers"] != "4" || c.Settings()["workers"] != "8" {
		t.Errorf("WithWorkers: %v (the original %v)", real.Settings(), c.Settings())
	}
	if s := DefaultCapacity().WithWorkers(3).Set; !slices.Equal(s, []string{"workers"}) {
		t.Errorf("WithWorkers on nothing given: set %q", s)
	}
	if DefaultCapacity().Settings() != nil || DefaultCapacity().Args() != nil {
		t.Error("nothing given must pass nothing")
	}
}

func TestCapacityRefusesUnknownKeysAndBadValues(t *testing.T) {
	cases := []struct{ yaml, want string }{
		{"bootstrap-cpu: 6ms", "bootstrap-cpu (line 1): not a capacity parameter; use one of [cores bootstrap lookup perRow"},
		{"workers: many", `workers (line 1): "many" is not a whole number`},
		{"cores: [1]", "cores (line 1): must be a single value"},
		{"bootstrap: 6", `bootstrap (line 1): "6" is not a duration`},
		{"workers: 2\nworkers: 3", "workers (line 2): given twice"},
	}
	for _, tc := range cases {
		if _, err := decodeCapacity(t, tc.yaml); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want %q", tc.yaml, err, tc.want)
		}
	}
	c, err := decodeCapacity(t, "workers: 0")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "workers 0 < 1") {
		t.Errorf("workers 0: %v", err)
	}
}
