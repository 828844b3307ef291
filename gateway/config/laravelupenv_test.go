package config

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
)

// laravelUpEnv is a copy of make laravel-up's own variables (the gateway cannot read up.sh when it
// starts): exactly the WAGATE_* names laravel/scripts/up.sh reads or writes to its env file that
// are neither a gateway setting nor the Laravel app's. A variable up.sh gains and the list lacks would make the
// gateway refuse to start in a shell that exported up.sh's env file.
func TestTheLaravelUpVariablesTheGatewayIgnoresAreUpShs(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", "laravel", "scripts", "up.sh"))
	if err != nil {
		t.Fatal(err)
	}
	others := map[string]bool{}
	for _, s := range settings() {
		others[s.envName()] = true
	}
	for _, n := range laravelAppEnv(t) {
		others[n] = true
	}
	// What a shell can carry: the variables up.sh reads ($NAME, ${NAME:-default}) and those its
	// files assign at the start of a line (the env file; the app's .env is the app's own). Not the
	// ones it sets for a child process only (WAGATE_PROBE_*: its readiness probe).
	var want []string
	for _, m := range regexp.MustCompile(`(?m)(?:\$\{?|^)(WAGATE_[A-Z0-9_]*[A-Z0-9])`).FindAllStringSubmatch(string(src), -1) {
		if n := m[1]; !others[n] && !slices.Contains(want, n) {
			want = append(want, n)
		}
	}
	slices.Sort(want)
	got := slices.Sorted(slices.Values(laravelUpEnv))
	if !slices.Equal(got, want) {
		t.Errorf("laravelUpEnv = %v\nup.sh's own variables = %v", got, want)
	}
}
