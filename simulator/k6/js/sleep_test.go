package js_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"wagate/simulator/k6/bundle"
	"wagate/simulator/k6/js"
	"wagate/simulator/metrics"
)

// A VU's sleeps share one timer: a sleep cut short by the end of its iteration leaves nothing
// behind that would end the next iteration's sleep early, and every sleep lasts its time.
func TestASleepAfterAnInterruptedOneLastsItsWholeTime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sleep.js")
	src := `import { sleep } from "k6";
export default function () { sleep(Number(__ENV.SECONDS)); }`
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	bun, err := bundle.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	s := &js.Shared{Bundle: bun, Env: map[string]string{"SECONDS": "0.6"}, Registry: metrics.NewRegistry(nil),
		Groups: js.NewGroupTree(), Counters: &js.Counters{}, Scenarios: map[string]js.ScenarioInfo{}}
	vu, err := js.NewVU(context.Background(), s, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range []struct {
		cutAfter time.Duration // 0: not cut
		min, max time.Duration
	}{
		{0, 600 * time.Millisecond, time.Hour},
		{50 * time.Millisecond, 0, 500 * time.Millisecond},
		{0, 600 * time.Millisecond, time.Hour},
		{0, 600 * time.Millisecond, time.Hour},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		if c.cutAfter > 0 {
			time.AfterFunc(c.cutAfter, cancel)
		}
		began := time.Now()
		err := vu.RunIteration(ctx, js.Iteration{Scenario: "default", Exec: "default", Iter: int64(i)})
		took := time.Since(began)
		cancel()
		switch {
		case c.cutAfter == 0 && err != nil:
			t.Errorf("iteration %d: %v", i, err)
		case c.cutAfter > 0 && err != nil && !js.IsInterrupted(err):
			t.Errorf("iteration %d: cut after %s: %v", i, c.cutAfter, err)
		case took < c.min || took > c.max:
			t.Errorf("iteration %d: slept %s, want %s..%s", i, took, c.min, c.max)
		}
	}
}
