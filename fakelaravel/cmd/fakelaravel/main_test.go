package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"wagate/fakelaravel"
	"wagate/internal/goldentest"
	"wagate/internal/proctest"
)

// The binary serves, passes its own conformance check, and stops cleanly on SIGTERM.
func TestBinaryServesConformsAndStopsOnSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "fakelaravel")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	addr := proctest.FreeAddr(t)
	secretFile := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secretFile, []byte("file-secret\n"), 0o600)
	var logs bytes.Buffer
	srv := exec.Command(bin, "-addr", addr, "-secret-file", secretFile, "-workers", "4", "-bootstrap-cpu", "1ms", "-db", filepath.Join(t.TempDir(), "db.sqlite"))
	srv.Env = append(os.Environ(), "FAKELARAVEL_TOKEN=env-token")
	srv.Stderr = &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Process.Kill()
	up := false
	for range 500 {
		if resp, err := http.Get("http://" + addr + "/_fake/healthz"); err == nil {
			resp.Body.Close()
			up = true
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !up {
		t.Fatalf("never came up:\n%s", logs.String())
	}

	out, err := exec.Command(bin, "conform", "-url", "http://"+addr, "-token", "env-token", "-secret", "file-secret").CombinedOutput()
	if err != nil || !regexp.MustCompile(`conform: (\d+) of (\d+) checks passed`).MatchString(string(out)) || strings.Contains(string(out), "FAIL") {
		t.Fatalf("conform: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "conform", "-url", "http://"+addr, "-token", "wrong").CombinedOutput()
	if code := exitCode(err); code != 1 || !strings.Contains(string(out), "FAIL") {
		t.Fatalf("conform with a wrong token: exit %d\n%s", code, out)
	}

	srv.Process.Signal(syscall.SIGTERM)
	if err := srv.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
	}
	if !strings.Contains(logs.String(), "fakelaravel stopped") {
		t.Fatalf("no clean stop:\n%s", logs.String())
	}
	for _, s := range []string{"env-token", "file-secret"} {
		if strings.Contains(logs.String(), s) {
			t.Fatalf("a secret was logged:\n%s", logs.String())
		}
	}
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func TestVersionAndMissingToken(t *testing.T) {
	var stderr bytes.Buffer
	if code := runServer([]string{"-version"}, io.Discard, &stderr); code != 0 {
		t.Fatalf("-version exit %d", code)
	}
	t.Setenv("FAKELARAVEL_TOKEN", "")
	if code := runServer([]string{"-addr", "127.0.0.1:0"}, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), "token is required") {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if code := runConform([]string{"-url", "http://127.0.0.1:1"}, &stderr, &stderr); code != 2 {
		t.Fatalf("conform without token: exit %d", code)
	}
}

// -bootstrap-cpu alone sets every request's cost (the lookup follows it); -lookup-cpu sets the
// lookup's; neither keeps the calibration's.
func TestLookupCostFollowsAnExplicitBootstrap(t *testing.T) {
	cal := fakelaravel.CapacityModel{Workers: 8, Backlog: 511, BootstrapCPU: 4 * time.Millisecond, LookupCPU: 3 * time.Millisecond}
	values := cal
	values.BootstrapCPU, values.LookupCPU = 6*time.Millisecond, 2*time.Millisecond
	for _, c := range []struct {
		set                  map[string]bool
		bootstrap, lookupFor time.Duration
	}{
		{map[string]bool{}, 4 * time.Millisecond, 3 * time.Millisecond},
		{map[string]bool{"bootstrap-cpu": true}, 6 * time.Millisecond, 6 * time.Millisecond},
		{map[string]bool{"lookup-cpu": true}, 4 * time.Millisecond, 2 * time.Millisecond},
		{map[string]bool{"bootstrap-cpu": true, "lookup-cpu": true}, 6 * time.Millisecond, 2 * time.Millisecond},
	} {
		// Without -calibration the flags' values (defaulting to the embedded calibration) apply.
		own := flagModel(values, c.set)
		merged := mergeModel(cal, own, c.set)
		if merged.BootstrapCPU != c.bootstrap || merged.LookupCost() != c.lookupFor {
			t.Errorf("flags %v: bootstrap %v lookup %v, want %v and %v", c.set, merged.BootstrapCPU, merged.LookupCost(), c.bootstrap, c.lookupFor)
		}
		if c.set["bootstrap-cpu"] && own.LookupCost() != c.lookupFor {
			t.Errorf("flags %v without -calibration: lookup %v, want %v", c.set, own.LookupCost(), c.lookupFor)
		}
	}
}

// The calibrated write-lock tail is a default like every other parameter: kept unless a flag sets it.
func TestLockWaitComesFromTheCalibrationUnlessSet(t *testing.T) {
	cal := fakelaravel.CapacityModel{Workers: 8, Backlog: 511, LockWaitShare: 0.01, LockWait: 33 * time.Millisecond}
	values := cal
	values.LockWaitShare, values.LockWait = 0.2, 5*time.Millisecond
	if m := mergeModel(cal, values, map[string]bool{}); m.LockWaitShare != 0.01 || m.LockWait != 33*time.Millisecond {
		t.Errorf("no flags: lock wait %v x %v, want the calibration's 0.01 x 33ms", m.LockWaitShare, m.LockWait)
	}
	if m := mergeModel(cal, values, map[string]bool{"lock-wait-share": true, "lock-wait": true}); m.LockWaitShare != 0.2 || m.LockWait != 5*time.Millisecond {
		t.Errorf("flags: lock wait %v x %v, want 0.2 x 5ms", m.LockWaitShare, m.LockWait)
	}
	cal.LockHold, values.LockHold = 50*time.Millisecond, 20*time.Millisecond
	if m := mergeModel(cal, values, map[string]bool{"lock-wait": true}); m.LockHold != 50*time.Millisecond {
		t.Errorf("no -lock-hold: lock hold %v, want the calibration's 50ms", m.LockHold)
	}
	if m := mergeModel(cal, values, map[string]bool{"lock-hold": true}); m.LockHold != 20*time.Millisecond || m.LockWait != 33*time.Millisecond {
		t.Errorf("-lock-hold: lock hold %v (wait %v), want 20ms (and the calibration's 33ms)", m.LockHold, m.LockWait)
	}
}

// A -fault-windows that does not parse is a usage error; one that parses but is out of range is
// refused at start with the reason.
func TestFaultWindowsFlagIsParsedAndValidated(t *testing.T) {
	for _, tc := range []struct {
		windows  string
		wantCode int
		wantSay  string
	}{
		{"teapot,rate=1", 2, `kind \"teapot\" is not one of`},
		{"status@10s,rate=1", 2, "want START+DURATION"},
		{"status,rate=2,status=503", 1, "rate 2 must be in (0, 1]"},
		{"status,rate=1,status=302,location=http://192.0.2.1/", 1, "must be on a loopback host"},
	} {
		var stderr bytes.Buffer
		code := runServer([]string{"-addr", "127.0.0.1:0", "-token", "t", "-db", t.TempDir() + "/db.sqlite", "-fault-windows", tc.windows}, io.Discard, &stderr)
		if code != tc.wantCode || !strings.Contains(stderr.String(), tc.wantSay) {
			t.Errorf("-fault-windows %q: exit %d, want %d saying %q: %s", tc.windows, code, tc.wantCode, tc.wantSay, stderr.String())
		}
	}
}

// -help goes to stdout with exit 0; a bad command line to stderr with exit 2 (internal/cli).
func TestHelpAndBadFlagsFollowTheConvention(t *testing.T) {
	cases := []struct {
		name       string
		run        func(args []string, stdout, stderr io.Writer) int
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"server -help", runServer, []string{"-help"}, 0, "usage: fakelaravel [flags]", ""},
		{"server bad flag", runServer, []string{"-nope"}, 2, "", "flag provided but not defined: -nope"},
		{"conform -help", runConform, []string{"-help"}, 0, "usage: fakelaravel conform", ""},
		{"conform bad flag", runConform, []string{"-nope"}, 2, "", "flag provided but not defined: -nope"},
		{"conform without -url", runConform, []string{"-token", "t"}, 2, "", "-url and a token are required"},
		{"capacity out of range", runServer, []string{"-token", "t", "-workers", "0"}, 2, "", "capacity: workers 0 < 1"},
		{"capacity flag of the wrong type", runServer, []string{"-jitter", "lots"}, 2, "", `invalid value "lots" for flag -jitter`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := tc.run(tc.args, &stdout, &stderr)
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d", code, tc.wantCode)
			}
			if !strings.Contains(stdout.String(), tc.wantStdout) || (tc.wantStdout == "" && stdout.Len() > 0) {
				t.Errorf("stdout %q, want %q", stdout.String(), tc.wantStdout)
			}
			if !strings.Contains(stderr.String(), tc.wantStderr) || (tc.wantStderr == "" && stderr.Len() > 0) {
				t.Errorf("stderr %q, want %q", stderr.String(), tc.wantStderr)
			}
		})
	}
}

// -help lists every flag word for word as testdata/help.golden, except what a calibration
// (make calibrate-laravel) changes: the capacity flags' defaults and the calibration's source are
// left out of the comparison.
func TestHelpListsEveryFlag(t *testing.T) {
	var stdout bytes.Buffer
	if code := runServer([]string{"-help"}, &stdout, io.Discard); code != 0 {
		t.Fatalf("-help: exit %d", code)
	}
	got := withoutCalibration(stdout.String())
	goldentest.Check(t, "help.golden", []byte(got))
	for _, f := range fakelaravel.CapacityFlags() {
		if !strings.Contains(got, "  -"+f.Name+" ") {
			t.Errorf("-help lacks -%s", f.Name)
		}
	}
}

// withoutCalibration replaces the calibration's source and the capacity flags' defaults in a -help
// text by placeholders.
func withoutCalibration(help string) string {
	help = strings.ReplaceAll(help, fakelaravel.DefaultCalibration().Source, "<calibration source>")
	capacity := map[string]bool{}
	for _, f := range fakelaravel.CapacityFlags() {
		capacity[f.Name] = true
	}
	defaultValue := regexp.MustCompile(` \(default [^)]*\)$`)
	lines := strings.Split(help, "\n")
	for i := 1; i < len(lines); i++ {
		name, _, _ := strings.Cut(strings.TrimPrefix(lines[i-1], "  -"), " ")
		if strings.HasPrefix(lines[i-1], "  -") && capacity[name] {
			lines[i] = defaultValue.ReplaceAllString(lines[i], "") + " (default: the calibration's)"
		}
	}
	return strings.Join(lines, "\n")
}
