package metrics

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"wagate/gateway/event"
	"wagate/gateway/laravel"
	"wagate/internal/docblock"
)

// allRegistered is the metric set of a cluster-mode batch gateway, the largest one, with every
// hook called once so each series family has a sample (and so its type shows in Gather).
func allRegistered(t *testing.T) *Metrics {
	t.Helper()
	m := New()
	m.RegisterSessions(func() (map[laravel.Status]int, int) { return map[laravel.Status]int{laravel.StatusConnected: 1}, 1 })
	if err := m.RegisterBatch(fixedBatch{FailuresByStatus: map[string]int64{"503": 1}}); err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterCache(fixedCache{}); err != nil {
		t.Fatal(err)
	}
	m.BatchSizes()(event.KindStatus, 1)
	c := m.RegisterCluster()
	c.SetMembers(1)
	c.SetHeld(1)
	c.ObserveTakeover(time.Second)
	m.RegisterDeadLetters()
	if err := m.RegisterJournal(func() JournalSnapshot { return JournalSnapshot{} }); err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterRedisPolicy(func() bool { return false }); err != nil {
		t.Fatal(err)
	}
	ev := event.Event{Kind: event.KindStatus}
	h := m.SessionHooks()
	h.EventEmitted(ev)
	m.LaravelObserver()(laravel.EndpointStatus, 200, time.Millisecond)
	m.ObserveAPI("GET /sessions/{id}", "GET", 200, time.Millisecond)
	return m
}

// metricRow is one wagate_* metric as the code registers it.
type metricRow struct{ name, typ, labels, help string }

var (
	descName   = regexp.MustCompile(`fqName: ("(?:[^"\\]|\\.)*")`)
	descHelp   = regexp.MustCompile(`help: ("(?:[^"\\]|\\.)*")`)
	descLabels = regexp.MustCompile(`variableLabels: \{([^}]*)\}`)
)

// registeredMetrics lists every wagate_* metric the gateway can register, from the registry's
// own descriptions, sorted by name.
func registeredMetrics(t *testing.T) []metricRow {
	t.Helper()
	m := allRegistered(t)
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]string{}
	for _, f := range families {
		types[f.GetName()] = strings.ToLower(f.GetType().String())
	}
	ch := make(chan *prometheus.Desc)
	go func() { m.Registry.Describe(ch); close(ch) }()
	var rows []metricRow
	for d := range ch {
		s := d.String()
		name, err := strconv.Unquote(descName.FindStringSubmatch(s)[1])
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if !strings.HasPrefix(name, "wagate_") {
			continue // the Go and process collectors' go_* and process_* series
		}
		help, err := strconv.Unquote(descHelp.FindStringSubmatch(s)[1])
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		typ, ok := types[name]
		if !ok {
			t.Errorf("%s has no sample in allRegistered: call its hook there so its type is known", name)
		}
		rows = append(rows, metricRow{name: name, typ: typ, labels: descLabels.FindStringSubmatch(s)[1], help: help})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].name < rows[j].name })
	return rows
}

// metricsReference is docs/metrics.md's table.
func metricsReference(rows []metricRow) []byte {
	var b strings.Builder
	b.WriteString("| metric | type | labels | meaning |\n|---|---|---|---|\n")
	for _, r := range rows {
		labels := ""
		if r.labels != "" {
			labels = "`" + strings.ReplaceAll(r.labels, ",", "`, `") + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", r.name, r.typ, labels, strings.ReplaceAll(r.help, "|", `\|`))
	}
	return []byte(b.String())
}

// TestTheMetricsReferenceListsEveryMetricTheGatewayRegisters keeps docs/metrics.md equal to the
// registered wagate_* series: a metric added, renamed or removed, or whose labels or help changed,
// fails here until the document says so (go test -run this -update-docs rewrites its table).
func TestTheMetricsReferenceListsEveryMetricTheGatewayRegisters(t *testing.T) {
	rows := registeredMetrics(t)
	if len(rows) < 40 {
		t.Fatalf("only %d wagate_* metrics found: allRegistered misses a Register call", len(rows))
	}
	docblock.Check(t, filepath.Join("..", "..", "docs", "metrics.md"), "metrics", metricsReference(rows))
}

// TestTheAlertsAndTheDashboardUseRegisteredMetricsAndEveryAlertIsDocumented fails when
// monitoring/alerts.yml or the Grafana dashboard query a wagate_* series the gateway does not
// register (a renamed metric would leave an alert that never fires), or when an alert is missing
// from docs/deploy.md's alert table.
func TestTheAlertsAndTheDashboardUseRegisteredMetricsAndEveryAlertIsDocumented(t *testing.T) {
	registered := map[string]bool{}
	for _, r := range registeredMetrics(t) {
		registered[r.name] = true
		if r.typ == "histogram" {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				registered[r.name+suffix] = true
			}
		}
	}
	series := regexp.MustCompile(`wagate_[a-z0-9_]*[a-z0-9]`)
	for _, f := range []string{"alerts.yml", "alerts_test.yml", "grafana-dashboard.json"} {
		src, err := os.ReadFile(filepath.Join("..", "..", "monitoring", f))
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, name := range series.FindAllString(string(src), -1) {
			if !registered[name] && !seen[name] {
				seen[name] = true
				t.Errorf("monitoring/%s uses %s, which the gateway does not register", f, name)
			}
		}
	}
	alerts, err := os.ReadFile(filepath.Join("..", "..", "monitoring", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	deploy, err := os.ReadFile(filepath.Join("..", "..", "docs", "deploy.md"))
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`(?m)^\s*- alert: *(\S+)`).FindAllStringSubmatch(string(alerts), -1)
	if len(names) == 0 {
		t.Fatal("no alert found in monitoring/alerts.yml")
	}
	for _, m := range names {
		if !strings.Contains(string(deploy), "| `"+m[1]+"` |") {
			t.Errorf("alert %s is not in docs/deploy.md's alert table", m[1])
		}
	}
}
