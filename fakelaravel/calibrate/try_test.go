package calibrate_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"

	"wagate/fakelaravel/calibrate"
)

func TestTry(t *testing.T) {
	if os.Getenv("CALTRY") == "" {
		t.Skip()
	}
	var roots []int
	for _, f := range []string{"/tmp/wagate-laravel/run/php-fpm.pid", "/tmp/wagate-laravel/run/nginx.pid"} {
		b, _ := os.ReadFile(f)
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		roots = append(roots, n)
	}
	plan := calibrate.DefaultPlan(8)
	plan.SaturationRepeats = 2
	plan.LoadRepeats = 1
	_, err := calibrate.Measure(context.Background(), calibrate.Target{Name: "laravel", BaseURL: "http://127.0.0.1:8089", Token: "wagate-dev-token"},
		calibrate.NewClient(), calibrate.Kinds, plan, calibrate.Sampler{Proc: "/proc", Roots: roots}, nil, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
}
