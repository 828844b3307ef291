package laravelup

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestReadEnvAndMasterPidsReadWhatUpShWrites(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	env := "# written by up.sh\nWAGATE_LARAVEL_URL=http://127.0.0.1:8089\nWAGATE_LARAVEL_SECRET=\n\nWAGATE_LARAVEL_DB=/tmp/x/app/database/wagate.sqlite\n"
	for name, content := range map[string]string{"env": env, "run/php-fpm.pid": "123\n", "run/nginx.pid": "not a pid"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ReadEnv(filepath.Join(dir, "env"))
	if err != nil || got[KeyURL] != "http://127.0.0.1:8089" || got[KeyDB] != "/tmp/x/app/database/wagate.sqlite" || got[KeySecret] != "" || len(got) != 3 {
		t.Fatalf("ReadEnv = %v, %v", got, err)
	}
	if pids := MasterPids(dir); !slices.Equal(pids, []int{123}) {
		t.Fatalf("MasterPids = %v, want [123] (a malformed pid file is skipped)", pids)
	}
	if _, err := ReadEnv(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "make laravel-up") {
		t.Fatalf("missing env file: %v", err)
	}
}

func TestStartNeedsScriptsDirAndPort(t *testing.T) {
	if _, err := Start(t.Context(), Options{Dir: t.TempDir(), Port: 1}); err == nil {
		t.Fatal("started without scripts")
	}
	i := &Instance{}
	if err := i.Stop(); err != nil {
		t.Fatalf("Stop of an instance without a directory: %v", err)
	}
}
