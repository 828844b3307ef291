// Package buildinfo holds the version string every wagate binary prints for -version, and the
// values the gateway exports as wagate_build_info.
//
// Version and Revision are set at link time by the Makefile, so they are known even when the Go
// toolchain records no VCS information (-buildvcs=false, a tarball without .git):
//
//	go build -ldflags "-X wagate/internal/buildinfo.Version=$(VERSION) -X wagate/internal/buildinfo.Revision=$(REVISION)"
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is the release version, injected at link time; "dev" when built without the Makefile.
var Version = "dev"

// Revision is the VCS revision, injected at link time; empty means "ask the Go build info".
var Revision = ""

// revisionLen is how much of a commit hash String and RevisionShort show.
const revisionLen = 12

// RevisionShort is the build's VCS revision (12 hex digits): Revision when set at link time, else
// the toolchain's vcs.revision (with "-dirty" when vcs.modified), else "unknown".
func RevisionShort() string {
	if Revision != "" {
		return shorten(Revision)
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	return fromSettings(bi.Settings)
}

// fromSettings reads the revision out of the toolchain's build settings.
func fromSettings(settings []debug.BuildSetting) string {
	rev, dirty := "", false
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "unknown"
	}
	rev = shorten(rev)
	if dirty {
		rev += "-dirty"
	}
	return rev
}

// shorten cuts a full commit hash to revisionLen characters and keeps a suffix such as "-dirty".
func shorten(rev string) string {
	hash, suffix := rev, ""
	for i := 0; i < len(rev); i++ {
		if rev[i] == '-' {
			hash, suffix = rev[:i], rev[i:]
			break
		}
	}
	if len(hash) > revisionLen {
		hash = hash[:revisionLen]
	}
	return hash + suffix
}

// String renders "<binary> <version> (<vcs revision>, <go version>)" for a -version flag.
func String(binary string) string {
	return fmt.Sprintf("%s %s (%s, %s)", binary, Version, RevisionShort(), runtime.Version())
}
