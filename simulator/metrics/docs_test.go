package metrics

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestEveryCatalogedMetricIsInTheScenarioDocs fails when a metric of the Catalog (a name
// thresholds may use) is not named in scenarios/README.md's Metrics section, so nobody writes a
// threshold on a metric whose meaning is nowhere.
func TestEveryCatalogedMetricIsInTheScenarioDocs(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "scenarios", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## Metrics\n")
	if !ok {
		t.Fatal(`scenarios/README.md has no "## Metrics" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var missing []string
	for name := range Catalog {
		if !strings.Contains(section, "`"+name+"`") {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	for _, name := range missing {
		t.Errorf("%s (%s) is not named in scenarios/README.md's Metrics section", name, Catalog[name].Help)
	}
}
