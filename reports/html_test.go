package reports

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"wagate/internal/goldentest"
)

var svgElement = regexp.MustCompile(`(?s)<svg class="chart" role="img" aria-label="([^"]*)".*?</svg>`)

// htmlStructure replaces each chart's drawing with a placeholder naming it, so the golden file
// pins the page's structure and text but not gonum/plot's path coordinates.
func htmlStructure(page []byte) []byte {
	return svgElement.ReplaceAll(page, []byte(`<svg chart="$1"/>`))
}

func TestHTMLReportStructureIsPinnedByGoldenFile(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteHTML(&buf, sampleBench(t)); err != nil {
		t.Fatal(err)
	}
	goldentest.Check(t, "report.golden.html", htmlStructure(buf.Bytes()))
	if dir := os.Getenv("REPORTS_HTML_OUT"); dir != "" { // for looking at it in a browser
		_ = os.WriteFile(filepath.Join(dir, "report.html"), buf.Bytes(), 0o644)
	}
}

func TestHTMLReportIsSelfContainedAndHasEveryChart(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteHTML(&buf, sampleBench(t)); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, banned := range []string{"<script", "<link", " src=", "url(", "@import", "https://"} {
		if strings.Contains(page, banned) {
			t.Errorf("report.html contains %q: it must work offline without external resources", banned)
		}
	}
	for _, id := range []string{"laravel-rpm", "api-latency-batch-1000", "delivery-delay-high", "delivery-delay-normal",
		"gateway-cpu", "gateway-rss", "sessions-legacy-100"} {
		if !strings.Contains(page, `<figure id="`+id+`">`) {
			t.Errorf("report.html lacks chart %s", id)
		}
	}
	if n := len(svgElement.FindAllString(page, -1)); n != 11 {
		t.Errorf("report.html has %d charts, want 11 (1 + 3 latency + 2 delay + CPU + RSS + 3 sessions)", n)
	}
}
