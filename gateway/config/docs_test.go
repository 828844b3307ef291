package config

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"wagate/internal/docblock"
)

// settingsReference is docs/settings.md's table, written from the settings table: one row per
// setting with its variable, flag, YAML key, default, the rule Validate applies to it alone, and
// its -help text.
func settingsReference() []byte {
	def := Default()
	var b strings.Builder
	b.WriteString("| variable | flag | YAML key | default | must be | meaning |\n|---|---|---|---|---|---|\n")
	for _, s := range settings() {
		env, flagName, shown, meaning := "`"+s.envName()+"`", "`-"+s.flag+"`", "`"+render(s.value(&def))+"`", s.usage
		if s.secret {
			env += " / `" + s.envName() + "_FILE`"
			flagName = "`-" + s.flag + "-file FILE`"
			meaning += " (secret: environment, file or YAML only; never logged)"
		}
		if shown == "``" {
			shown = "empty"
		}
		rule := ""
		if s.positive {
			rule = "> 0"
		}
		fmt.Fprintf(&b, "| %s | %s | `%s` | %s | %s | %s |\n", env, flagName, s.yamlName(), shown, rule,
			strings.ReplaceAll(meaning, "|", `\|`))
	}
	return []byte(b.String())
}

// TestTheSettingsReferenceListsEverySettingAsTheCodeDefinesIt keeps docs/settings.md equal to
// the settings table: a setting added, renamed, removed, or whose default or help changed fails
// here until the document says so (go test -run this -update-docs rewrites its table).
func TestTheSettingsReferenceListsEverySettingAsTheCodeDefinesIt(t *testing.T) {
	docblock.Check(t, filepath.Join("..", "..", "docs", "settings.md"), "settings", settingsReference())
}

// notSettings are the WAGATE_* variables the documents may name that are no gateway setting,
// each with the reader it belongs to.
var notSettings = map[string]string{
	"WAGATE_LOAD_SESSIONS":         "gateway/app's load test (TestLoadManySessions)",
	"WAGATE_LOAD_MODE":             "gateway/app's load test (TestLoadManySessions)",
	"WAGATE_CLUSTER_TEST_SESSIONS": "gateway/cluster/processtest's session count",
	"WAGATE_REQUIRE_SERVERS":       "tests: fail instead of skip when redis-server or Postgres is absent (CI)",
	"WAGATE_IMAGE":                 "deploy/compose.yaml's image",
	"WAGATE_IDLECOST_CPUPROFILE":   "gateway/whatsapp's idle-cost benchmark: where it writes the window's CPU profile",
	"WAGATE_IDLECOST_WINDOW":       "gateway/whatsapp's idle-cost benchmark: how long it watches the idle sessions' CPU",
}

// laravelAppEnv returns the WAGATE_* variables the reference Laravel app reads (laravel/: its
// config and bootstrap), which docs/security.md names for key rotation.
func laravelAppEnv(t *testing.T) []string {
	t.Helper()
	var names []string
	for _, f := range []string{"config/wagate.php", "bootstrap/autoload.php"} {
		src, err := os.ReadFile(filepath.Join("..", "..", "laravel", f))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`env\('(WAGATE_[A-Z0-9_]+)'`).FindAllStringSubmatch(string(src), -1) {
			names = append(names, m[1])
		}
	}
	return names
}

// TestEveryVariableTheDocumentsNameIsASetting fails when README.md or docs/*.md name a WAGATE_*
// variable the gateway no longer reads (a removed or renamed setting), unless it is another
// reader's (make laravel-up's, the Laravel app's, a test's).
func TestEveryVariableTheDocumentsNameIsASetting(t *testing.T) {
	known := map[string]bool{ConfigFileEnv: true}
	for _, s := range settings() {
		known[s.envName()] = true
		if s.secret {
			known[s.envName()+"_FILE"] = true
		}
	}
	for _, n := range laravelUpEnv {
		known[n] = true
	}
	for _, n := range laravelAppEnv(t) {
		known[n] = true
	}
	for n := range notSettings {
		known[n] = true
	}
	docs, err := filepath.Glob(filepath.Join("..", "..", "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	docs = append(docs, filepath.Join("..", "..", "README.md"))
	variable := regexp.MustCompile(`WAGATE_[A-Z0-9_]*[A-Z0-9]`)
	for _, path := range docs {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var unknown []string
		for _, n := range variable.FindAllString(string(src), -1) {
			if !known[n] && !slices.Contains(unknown, n) {
				unknown = append(unknown, n)
			}
		}
		sort.Strings(unknown)
		for _, n := range unknown {
			all := make([]string, 0, len(known))
			for k := range known {
				all = append(all, k)
			}
			t.Errorf("%s names %s, which no gateway setting is (nearest: %s)", path, n, nearest(n, all))
		}
	}
}
