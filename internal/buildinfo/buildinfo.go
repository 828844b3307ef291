// Package buildinfo holds the version string every wagate binary prints for -version.
//
// Version is set at link time by the Makefile:
//
//	go build -ldflags "-X wagate/internal/buildinfo.Version=$(VERSION)"
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is the release version, injected at link time; "dev" when built without the Makefile.
var Version = "dev"

// String renders "<binary> <version> (<vcs revision>, <go version>)" for a -version flag.
func String(binary string) string {
	rev := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				rev = s.Value[:12]
			}
		}
	}
	return fmt.Sprintf("%s %s (%s, %s)", binary, Version, rev, runtime.Version())
}
