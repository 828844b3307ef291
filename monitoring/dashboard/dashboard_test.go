package dashboard

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

var root = filepath.Join("..", "..")

// The committed dashboard is what this code generates.
func TestCommittedDashboardMatchesTheGenerator(t *testing.T) {
	want, err := JSON()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(root, FileName))
	if err != nil {
		t.Fatalf("%v (run make dashboard)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from monitoring/dashboard: run make dashboard and commit it", FileName)
	}
}

var metricName = regexp.MustCompile(`wagate_[a-z_]+`)

// exported lists the wagate_* metric names the gateway's code registers.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	err := filepath.WalkDir(filepath.Join(root, "gateway"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range regexp.MustCompile(`"(wagate_[a-z_]+)"`).FindAllStringSubmatch(string(src), -1) {
			names[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// Every metric a dashboard query or an alert rule names is one the gateway exports (a histogram's
// _bucket, _count and _sum series included), so a renamed metric cannot leave a blank panel or a
// silent alert behind.
func TestDashboardAndAlertsNameOnlyExportedMetrics(t *testing.T) {
	names := exported(t)
	if len(names) < 20 {
		t.Fatalf("found only %d wagate_* metric names in gateway/", len(names))
	}
	known := func(n string) bool {
		for _, suffix := range []string{"", "_bucket", "_count", "_sum"} {
			if base, ok := strings.CutSuffix(n, suffix); ok && names[base] {
				return true
			}
		}
		return false
	}
	dash, err := JSON()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "monitoring", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct{ Expr string }
		}
	}
	if err := yaml.Unmarshal(data, &rules); err != nil {
		t.Fatal(err)
	}
	var alertExprs strings.Builder
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			alertExprs.WriteString(r.Expr + "\n")
		}
	}
	for file, text := range map[string]string{FileName: exprs(string(dash)), "monitoring/alerts.yml": alertExprs.String()} {
		used := metricName.FindAllString(text, -1)
		if len(used) == 0 {
			t.Errorf("%s names no wagate_* metric", file)
		}
		for _, n := range used {
			if !known(n) {
				t.Errorf("%s queries %s, which the gateway does not export", file, n)
			}
		}
	}
}

// exprs keeps the dashboard's lines holding queries ("expr"), not descriptions that may mention
// metrics.
func exprs(text string) string {
	var b strings.Builder
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, "expr") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}
