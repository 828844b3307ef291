package reports

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"wagate/internal/docblock"
)

// scopeWords says in a sentence where a target is measured, for docs/design.md.
var scopeWords = map[Scope]string{
	AtScale:        "the batch entry at 1000 users (`make bench`)",
	ScaleVsLegacy:  "batch at 1000 users vs legacy on the same per-user workload, per user (`make bench`)",
	EveryRun:       "every run of every entry",
	CapacitySearch: "the capacity search (`make bench-capacity`: step up, then bisect)",
	VsFloor:        "the batch entry at 1000 users vs the floor entry at 1000 users, a bare net/http server under the same poll workload on the gateway's CPU set (`make bench`)",
	AtSessionScale: "10,000 sessions in one gateway process (`make bench-scale`)",
	AtSeedBatch:    "the batch entry at the seed's 100 users, with the floor entry under the same polls beside it (`make bench`)",
}

// designTargetsTable is docs/design.md's targets table: DesignTargets and ScaleTargets as the
// bench report checks them.
func designTargetsTable(t *testing.T) []byte {
	t.Helper()
	var b strings.Builder
	b.WriteString("| target | bound | where it is measured |\n|---|---|---|\n")
	for _, spec := range append(append([]TargetSpec{}, DesignTargets...), ScaleTargets...) {
		where, ok := scopeWords[spec.Scope]
		if !ok {
			t.Fatalf("scope %d of %q has no words in scopeWords", spec.Scope, spec.Name)
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", spec.Name, spec.Bound.Text(spec.Scope.unit(spec.Figure)), where)
	}
	return []byte(b.String())
}

// TestTheDesignDocumentListsTheTargetsTheReportChecks keeps docs/design.md's targets table equal
// to the targets report.md evaluates: a target added, removed or whose bound changed fails here
// until the document says so (go test -run this -update-docs rewrites the table).
func TestTheDesignDocumentListsTheTargetsTheReportChecks(t *testing.T) {
	docblock.Check(t, filepath.Join("..", "docs", "design.md"), "targets", designTargetsTable(t))
}
