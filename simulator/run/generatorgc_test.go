package run

import (
	"os"
	"runtime/debug"
	"testing"
)

// gcPercent reads the GC target without changing it.
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

func TestTheGeneratorsGCTargetIsSetUnlessGOGCIsSetAndRestoredAfter(t *testing.T) {
	for _, c := range []struct {
		name   string
		gogc   *string
		during func(before int) int
	}{
		{"no GOGC in the environment: the generator's target", nil, func(int) int { return simulatorGOGC }},
		{"GOGC set: left alone", ptr("150"), func(before int) int { return before }},
		{"GOGC=off: left alone", ptr("off"), func(before int) int { return before }},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("GOGC", "")
			if c.gogc == nil {
				os.Unsetenv("GOGC")
			} else {
				os.Setenv("GOGC", *c.gogc)
			}
			defer debug.SetGCPercent(debug.SetGCPercent(137))
			restore := UseGeneratorGC()
			if got, want := gcPercent(), c.during(137); got != want {
				t.Errorf("GC target while in use %d, want %d", got, want)
			}
			restore()
			if got := gcPercent(); got != 137 {
				t.Errorf("GC target after restore %d, want the previous 137", got)
			}
		})
	}
}

func ptr(s string) *string { return &s }
