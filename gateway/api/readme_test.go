package api

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTheReadmeNamesEveryRoute fails when a route the API serves is missing from the endpoint
// table of README.md's "The gateway" section: a line there must name the route's method and its
// path (followed by a backtick, a query, a space or a comma).
func TestTheReadmeNamesEveryRoute(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## The gateway\n")
	if !ok {
		t.Fatal(`README.md has no "## The gateway" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	lines := strings.Split(section, "\n")
	for _, route := range routesInCode(t) {
		method, path, _ := strings.Cut(route, " ")
		if !readmeNames(lines, method, path) {
			t.Errorf("README.md's endpoint table does not name %s", route)
		}
	}
}

// readmeNames reports whether a line names method and path, the path ending where a route ends.
func readmeNames(lines []string, method, path string) bool {
	for _, line := range lines {
		if !strings.HasPrefix(line, "|") || !strings.Contains(line, method+" ") {
			continue
		}
		for _, end := range []string{"`", "?", " ", ","} {
			if strings.Contains(line, path+end) {
				return true
			}
		}
	}
	return false
}
