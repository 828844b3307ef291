package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestRevisionFromTheToolchainsSettings(t *testing.T) {
	cases := []struct {
		name     string
		settings []debug.BuildSetting
		want     string
	}{
		{"no VCS information (-buildvcs=false)", nil, "unknown"},
		{"clean tree", []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "false"}}, "0123456789ab"},
		{"modified tree", []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"}}, "0123456789ab-dirty"},
		{"short hash kept", []debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}}, "abc"},
	}
	for _, tc := range cases {
		if got := fromSettings(tc.settings); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestLinkTimeRevisionWinsAndIsShortened(t *testing.T) {
	defer func(v, r string) { Version, Revision = v, r }(Version, Revision)
	Version, Revision = "v1.2.3", "fedcba9876543210fedcba-dirty"
	if got := RevisionShort(); got != "fedcba987654-dirty" {
		t.Fatalf("RevisionShort %q", got)
	}
	if got := String("gateway"); !strings.HasPrefix(got, "gateway v1.2.3 (fedcba987654-dirty, go") {
		t.Fatalf("String %q", got)
	}
}
