package scenario

import (
	"path/filepath"
	"strings"
	"testing"
)

// Every fault scenario loads and asserts what `make bench-faults` promises: a bound on lost
// updates, no stale overwrite and a bounded recovery time.
func TestFaultScenariosLoadAndAssertTheirGuarantees(t *testing.T) {
	files, err := filepath.Glob("../../scenarios/faults-*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fault scenarios: %v", err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			f, err := Load(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(f.Faults) == 0 {
				t.Error("no fault scheduled")
			}
			for _, key := range []string{"lost_updates", "stale_overwrites", "fault_recovery_time"} {
				if _, ok := f.Thresholds[key]; !ok {
					t.Errorf("no %s threshold", key)
				}
			}
			if got := f.Thresholds["stale_overwrites"]; len(got) != 1 || got[0].Threshold != "count==0" {
				t.Errorf("stale_overwrites thresholds = %v, want count==0", got)
			}
			if lost := f.Thresholds["lost_updates"]; len(lost) == 1 && lost[0].Threshold != "count==0" && !strings.Contains(f.Name, "redis-lost") {
				t.Errorf("only the Redis-loss scenarios may bound lost updates above 0, got %v", lost)
			}
			for _, flt := range f.Faults {
				if flt.At.Std() >= f.ScheduledDuration() {
					t.Errorf("fault %s at %s comes after the users stop (%s)", flt.Name, flt.At, f.ScheduledDuration())
				}
			}
		})
	}
}

func TestProcessFaultsAreValidated(t *testing.T) {
	_, err := Parse("f.yaml", []byte(`
scenarios:
  s: {executor: constant-vus, duration: 1m}
faults:
  - at: 10s
    process: {action: reboot}
`), nil)
	if err == nil || !strings.Contains(err.Error(), `faults[0].process.action: "reboot" is not a process action`) {
		t.Fatalf("got %v", err)
	}
	_, err = Parse("f.yaml", []byte(`
scenarios:
  s: {executor: constant-vus, duration: 1m}
faults:
  - at: 10s
    process: {action: gateway-kill}
    whatsapp: {action: drop}
`), nil)
	if err == nil || !strings.Contains(err.Error(), "give exactly one of") {
		t.Fatalf("got %v", err)
	}
	f, err := Parse("f.yaml", []byte(`
scenarios:
  s: {executor: constant-vus, duration: 1m}
faults:
  - at: 10s
    duration: 3s
    process: {action: redis-restart}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := f.Faults[0].Process; p == nil || !p.OnRedis() {
		t.Fatalf("process fault = %+v", p)
	}
}
