package fakelaravel

import (
	"flag"
	"io"
	"testing"
	"time"
)

// Each capacity flag sets its own parameter: a model written as arguments (Arg) and parsed back
// (Register) is the same model, and a flag not given keeps the default it was registered with.
func TestCapacityFlagsRoundTripThroughTheCommandLine(t *testing.T) {
	want := CapacityModel{Cores: 1.5, BootstrapCPU: 6 * time.Millisecond, LookupCPU: 2 * time.Millisecond, PerRowCPU: 300 * time.Microsecond,
		Jitter: 0.1, LockWaitShare: 0.02, LockWait: 7 * time.Millisecond, LockHold: 40 * time.Millisecond, Workers: 12, Backlog: 64,
		ProxyTimeout: 30 * time.Second}
	for _, f := range CapacityFlags() {
		t.Run(f.Name, func(t *testing.T) {
			defaults := DefaultCapacityModel()
			got := defaults
			fs := flag.NewFlagSet("fakelaravel", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			for _, g := range CapacityFlags() {
				g.Register(fs, &got)
			}
			if err := fs.Parse([]string{f.Arg(want)}); err != nil {
				t.Fatal(err)
			}
			expected := defaults
			f.Copy(&expected, &want)
			if got != expected {
				t.Errorf("%s: model %+v, want %+v", f.Arg(want), got, expected)
			}
			if expected == defaults {
				t.Errorf("%s sets nothing the test can see: pick a value other than the default", f.Arg(want))
			}
		})
	}
}

func TestEveryCapacityParameterHasAFlag(t *testing.T) {
	every := CapacityModel{Cores: 1, BootstrapCPU: 1, LookupCPU: 1, PerRowCPU: 1, Jitter: 0.5, LockWaitShare: 0.5, LockWait: 1, LockHold: 1,
		Workers: 1, Backlog: 1, ProxyTimeout: 1}
	var m CapacityModel
	for _, f := range CapacityFlags() {
		f.Copy(&m, &every)
	}
	if m != every {
		t.Errorf("a parameter no flag sets: %+v", m)
	}
}
