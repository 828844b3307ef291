package main

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"wagate/fakelaravel"
)

func writeEnv(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDeploymentComesFromTheEnvFileOfLaravelUp(t *testing.T) {
	p := writeEnv(t, "WAGATE_LARAVEL_URL=http://127.0.0.1:8089\nWAGATE_LARAVEL_TOKEN=tok\nWAGATE_LARAVEL_SECRET=\n"+
		"WAGATE_LARAVEL_WORKERS=8\nWAGATE_LARAVEL_BACKLOG=511\nWAGATE_LARAVEL_PROXY_TIMEOUT_MS=60000\nWAGATE_LARAVEL_DIR=/tmp/x\n")
	d, err := loadDeployment(options{envFile: p})
	if err != nil {
		t.Fatal(err)
	}
	if d.url != "http://127.0.0.1:8089" || d.token != "tok" || len(d.secret) != 0 || d.workers != 8 || d.backlog != 511 ||
		d.proxyTimeout != time.Minute || d.dir != "/tmp/x" {
		t.Fatalf("deployment %+v", d)
	}
	d, err = loadDeployment(options{envFile: p, url: "http://127.0.0.1:9", token: "other"})
	if err != nil || d.url != "http://127.0.0.1:9" || d.token != "other" {
		t.Fatalf("flags do not override: %+v, %v", d, err)
	}
}

func TestDeploymentRejectsAnIncompleteEnvFile(t *testing.T) {
	for _, content := range []string{
		"WAGATE_LARAVEL_URL=http://x\nWAGATE_LARAVEL_TOKEN=t\nWAGATE_LARAVEL_BACKLOG=1\nWAGATE_LARAVEL_PROXY_TIMEOUT_MS=1\n",
		"WAGATE_LARAVEL_TOKEN=t\nWAGATE_LARAVEL_WORKERS=1\nWAGATE_LARAVEL_BACKLOG=1\nWAGATE_LARAVEL_PROXY_TIMEOUT_MS=1\n",
		"WAGATE_LARAVEL_URL=http://x\nWAGATE_LARAVEL_TOKEN=t\nWAGATE_LARAVEL_WORKERS=0\nWAGATE_LARAVEL_BACKLOG=1\nWAGATE_LARAVEL_PROXY_TIMEOUT_MS=1\n",
	} {
		if _, err := loadDeployment(options{envFile: writeEnv(t, content)}); err == nil {
			t.Errorf("accepted %q", content)
		}
	}
	if _, err := loadDeployment(options{envFile: filepath.Join(t.TempDir(), "missing")}); err == nil || !strings.Contains(err.Error(), "laravel-up") {
		t.Errorf("missing env file: %v", err)
	}
}

func TestKindsAndVersion(t *testing.T) {
	if k, err := parseKinds("get, post50"); err != nil || len(k) != 2 {
		t.Fatalf("kinds %v, %v", k, err)
	}
	if _, err := parseKinds("get,put"); err == nil {
		t.Fatal("accepted an unknown kind")
	}
	var out bytes.Buffer
	if err := run([]string{"-version"}, &out); err != nil || !strings.Contains(out.String(), "calibrate-laravel") {
		t.Fatalf("-version: %q, %v", out.String(), err)
	}
}

func TestFittedModelSurvivesTheCalibrationFileRoundTrip(t *testing.T) {
	for _, v := range []float64{6.91, 0.347, 0.2, 29.9134567, 0.0001, 60000, 7.123456789} {
		m := stableModel(fakelaravel.CalibratedModel{Cores: 1.2345678, BootstrapCPUMS: v, PerRowCPUMS: v / 10, Jitter: 0.33333, Workers: 8, Backlog: 511, ProxyTimeoutMS: v})
		cm := m.CapacityModel()
		if back := cm.Calibrated().CapacityModel(); back != cm {
			t.Errorf("%v: round trip %+v != %+v", v, back, cm)
		}
		if math.Abs(m.BootstrapCPUMS-v) > 0.011 {
			t.Errorf("%v rounded to %v", v, m.BootstrapCPUMS)
		}
	}
}
