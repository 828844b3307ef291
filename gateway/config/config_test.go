package config

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"
)

const rootHex = "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20"

type env map[string]string

func (e env) get(k string) (string, bool) { v, ok := e[k]; return v, ok }

func (e env) environ() []string {
	out := make([]string, 0, len(e))
	for k, v := range e {
		out = append(out, k+"="+v)
	}
	return out
}

func load(t *testing.T, e env, files map[string]string, args ...string) (Loaded, string, error) {
	t.Helper()
	var out bytes.Buffer
	l, err := Load(Options{Args: args, Getenv: e.get, Environ: e.environ, Stdout: &out, Output: &out, ReadFile: func(p string) ([]byte, error) {
		if v, ok := files[p]; ok {
			return []byte(v), nil
		}
		return nil, fmt.Errorf("open %s: %w", p, os.ErrNotExist)
	}})
	return l, out.String(), err
}

func minimal() env {
	return env{"WAGATE_API_TOKEN": "0123456789abcdef", "WAGATE_LARAVEL_URL": "http://127.0.0.1:8000", "WAGATE_LARAVEL_TOKEN": "laravel-token"}
}

func TestDefaultsAreTheSeeds(t *testing.T) {
	l, _, err := load(t, minimal(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := l.Config
	if c.Addr != ":4000" || c.Mode != ModeLegacy || c.QRFirst != 60*time.Second || c.QRNext != 20*time.Second || c.QRCodes != 6 ||
		c.Batch.Size != 50 || c.Batch.Interval != 5*time.Second || c.Batch.PriorityInterval != time.Second || c.RedisURL != "" {
		t.Fatalf("%+v", c)
	}
}

func TestPrecedenceIsDefaultsThenFileThenEnvThenFlags(t *testing.T) {
	e := minimal()
	e["WAGATE_CONFIG"] = "/etc/wagate.yaml"
	e["WAGATE_QR_CODES"] = "4"
	e["WAGATE_BATCH_SIZE"] = "20"
	e["WAGATE_REDIS_EMBEDDED"] = "1"
	files := map[string]string{"/etc/wagate.yaml": "qrCodes: 3\nbatchSize: 10\nbatchInterval: 2s\nmode: batch\n"}
	l, _, err := load(t, e, files, "-batch-size", "30")
	if err != nil {
		t.Fatal(err)
	}
	c := l.Config
	if c.QRCodes != 4 || c.Batch.Size != 30 || c.Batch.Interval != 2*time.Second || c.Mode != ModeBatch {
		t.Fatalf("%+v", c)
	}
}

func TestSecretsComeFromEnvOrFilesNeverPlainFlags(t *testing.T) {
	e := env{"WAGATE_LARAVEL_URL": "http://x", "WAGATE_API_TOKEN_FILE": "/run/secrets/api", "WAGATE_LARAVEL_SECRET": "hmac"}
	files := map[string]string{"/run/secrets/api": "from-a-file-0123456789\n", "/run/secrets/lt": "laravel-tok\n"}
	l, _, err := load(t, e, files, "-laravel-token-file", "/run/secrets/lt")
	if err != nil {
		t.Fatal(err)
	}
	if l.Config.APIToken != "from-a-file-0123456789" || l.Config.LaravelToken != "laravel-tok" || l.Config.LaravelSecret != "hmac" {
		t.Fatalf("%+v", l.Config)
	}
	if _, _, err := load(t, minimal(), nil, "-api-token", "x"); err == nil {
		t.Fatal("a secret was accepted as a plain flag")
	}
}

func TestSecretsAreNeverLogged(t *testing.T) {
	e := minimal()
	e["WAGATE_LARAVEL_SECRET"] = "super-secret-hmac"
	e["WAGATE_STORE_DSN"] = "postgres://u:pw-in-dsn@db/wagate"
	l, _, err := load(t, e, nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "config", l.Config)
	for _, secret := range []string{"0123456789abcdef", "super-secret-hmac", "pw-in-dsn"} {
		if strings.Contains(buf.String(), secret) {
			t.Fatalf("log line contains a secret: %s", buf.String())
		}
	}
	if !strings.Contains(buf.String(), `"laravelSecret":"set"`) || !strings.Contains(buf.String(), `"laravelUrl":"http://127.0.0.1:8000"`) {
		t.Fatalf("log line: %s", buf.String())
	}
}

func TestInvalidValuesFailWithTheSettingsName(t *testing.T) {
	cases := []struct {
		name string
		set  env
		args []string
		want string
	}{
		{"missing token", env{"WAGATE_API_TOKEN": ""}, nil, "WAGATE_API_TOKEN: required"},
		{"short token", env{"WAGATE_API_TOKEN": "short"}, nil, "at least 16"},
		{"missing laravel url", env{"WAGATE_LARAVEL_URL": ""}, nil, "WAGATE_LARAVEL_URL: required"},
		{"relative laravel url", env{"WAGATE_LARAVEL_URL": "localhost:8000"}, nil, "WAGATE_LARAVEL_URL"},
		{"bad mode", env{"WAGATE_MODE": "turbo"}, nil, `WAGATE_MODE: "turbo" must be legacy or batch`},
		{"bad duration", env{"WAGATE_QR_TIMEOUT": "20"}, nil, "WAGATE_QR_TIMEOUT: \"20\" is not a duration"},
		{"bad int", env{"WAGATE_QR_CODES": "six"}, nil, "WAGATE_QR_CODES: \"six\" is not an integer"},
		{"zero codes", env{"WAGATE_QR_CODES": "0"}, nil, "WAGATE_QR_CODES: must be positive"},
		{"batch too big", env{"WAGATE_BATCH_SIZE": "501"}, nil, "WAGATE_BATCH_SIZE"},
		{"bad addr", env{"WAGATE_ADDR": "4000"}, nil, "WAGATE_ADDR"},
		{"bad redis", env{"WAGATE_REDIS_URL": "http://x"}, nil, "WAGATE_REDIS_URL"},
		{"bad log level", env{"WAGATE_LOG_LEVEL": "loud"}, nil, "WAGATE_LOG_LEVEL"},
		{"bad flag value", nil, []string{"-qr-codes", "x"}, "-qr-codes"},
		{"unknown flag", nil, []string{"-nope"}, "not defined"},
		{"stray argument", nil, []string{"extra"}, "unexpected argument"},
		{"dial without insecure", env{"WAGATE_WA_DIAL": "127.0.0.1:1", "WAGATE_WA_ROOT_PUBKEY": rootHex}, nil, "refused without WAGATE_WA_INSECURE_TEST=1"},
		{"insecure without dial", env{"WAGATE_WA_INSECURE_TEST": "1"}, nil, "needs both"},
		{"bad root key", env{"WAGATE_WA_INSECURE_TEST": "1", "WAGATE_WA_DIAL": "127.0.0.1:1", "WAGATE_WA_ROOT_PUBKEY": "abcd"}, nil, "root key"},
		{"missing secret file", env{"WAGATE_LARAVEL_TOKEN_FILE": "/nope"}, nil, "WAGATE_LARAVEL_TOKEN_FILE"},
		{"pprof on a public address", env{"WAGATE_PPROF_ADDR": "0.0.0.0:6060"}, nil, "WAGATE_PPROF_ADDR: \"0.0.0.0:6060\" must be a loopback address"},
		{"pprof without port", env{"WAGATE_PPROF_ADDR": "127.0.0.1"}, nil, "WAGATE_PPROF_ADDR"},
		{"negative rate limit", env{"WAGATE_RATE_LIMIT": "-1"}, nil, "WAGATE_RATE_LIMIT: must not be negative"},
	}
	for _, tc := range cases {
		e := minimal()
		for k, v := range tc.set {
			e[k] = v
		}
		_, _, err := load(t, e, nil, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want it to mention %q", tc.name, err, tc.want)
		}
	}
}

func TestYAMLErrorsNameTheKeyAndLine(t *testing.T) {
	e := minimal()
	for body, want := range map[string]string{
		"nope: 1\n":                `nope (line 1): not a gateway setting; did you mean mode?`,
		"qrCodes: 3\nqrTimeout: x": "qrTimeout (line 2)",
		"batchSize: [1, 2]\n":      "must be a single value",
		"a: [unclosed\n":           "not valid YAML",
	} {
		_, _, err := load(t, e, map[string]string{"c.yaml": body}, "-config", "c.yaml")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want %q", body, err, want)
		}
	}
	if _, _, err := load(t, e, nil, "-config", "missing.yaml"); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestInsecureTestSettings(t *testing.T) {
	e := minimal()
	e["WAGATE_WA_DIAL"] = "127.0.0.1:5555"
	e["WAGATE_WA_ROOT_PUBKEY"] = rootHex
	l, _, err := load(t, e, nil, "-wa-insecure-test")
	if err != nil {
		t.Fatal(err)
	}
	d, err := l.Config.WhatsAppDial()
	if err != nil || d == nil || d.Addr != "127.0.0.1:5555" || len(d.RootPubKey) != 32 {
		t.Fatalf("%+v %v", d, err)
	}
	l, _, _ = load(t, minimal(), nil)
	if d, err := l.Config.WhatsAppDial(); d != nil || err != nil {
		t.Fatal("dial settings without the insecure switch")
	}
}

func TestHelpListsEverySettingWithItsEnvVar(t *testing.T) {
	_, out, err := load(t, env{}, nil, "-help")
	if !errors.Is(err, ErrHelp) {
		t.Fatalf("err %v", err)
	}
	for _, s := range settings() {
		if !strings.Contains(out, s.envName()) {
			t.Errorf("-help lacks %s", s.envName())
		}
	}
	for _, want := range []string{"WAGATE_API_TOKEN_FILE", "-api-token-file FILE", "-version", "-config", "WAGATE_CONFIG", ":4000"} {
		if !strings.Contains(out, want) {
			t.Errorf("-help lacks %q", want)
		}
	}
}

// -help writes the usage to stdout (the binary exits 0); a bad flag writes nothing there and is
// returned as an error (the binary prints it on stderr and exits 2).
func TestHelpGoesToStdoutAndBadFlagsAreErrors(t *testing.T) {
	cases := []struct {
		args       []string
		wantErr    string
		wantStdout string
	}{
		{[]string{"-help"}, "flag: help requested", "Usage: gateway [flags]"},
		{[]string{"-h"}, "flag: help requested", "WAGATE_API_TOKEN"},
		{[]string{"-nope"}, "config: flag provided but not defined: -nope (gateway -help lists every flag)", ""},
		{[]string{"-qr-codes"}, "flag needs an argument: -qr-codes", ""},
	}
	for _, tc := range cases {
		var stdout, stderr bytes.Buffer
		_, err := Load(Options{Args: tc.args, Getenv: minimal().get, Stdout: &stdout, Output: &stderr})
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%v: err %v, want %q", tc.args, err, tc.wantErr)
		}
		if !strings.Contains(stdout.String(), tc.wantStdout) || (tc.wantStdout == "" && stdout.Len() > 0) {
			t.Errorf("%v: stdout %q, want %q", tc.args, stdout.String(), tc.wantStdout)
		}
		if stderr.Len() > 0 {
			t.Errorf("%v: Load wrote to stderr: %q", tc.args, stderr.String())
		}
	}
}

func TestVersionNeedsNoOtherSetting(t *testing.T) {
	l, _, err := load(t, env{}, nil, "-version")
	if err != nil || !l.Version {
		t.Fatalf("%+v %v", l, err)
	}
}

func TestPprofIsOffByDefaultAndLoopbackOnly(t *testing.T) {
	l, _, err := load(t, minimal(), nil)
	if err != nil || l.Config.PprofAddr != "" {
		t.Fatalf("default pprof addr %q (err %v), want off", l.Config.PprofAddr, err)
	}
	for _, addr := range []string{"127.0.0.1:6060", "[::1]:6060", "localhost:6060"} {
		e := minimal()
		e["WAGATE_PPROF_ADDR"] = addr
		if _, _, err := load(t, e, nil); err != nil {
			t.Errorf("pprof on %s refused: %v", addr, err)
		}
	}
}

// The gateway refuses to start on settings that would run it unsafely or that it would ignore;
// each refusal names the variable and says what to do.
func TestUnsafeOrUnknownSettingsStopTheStart(t *testing.T) {
	cases := []struct {
		name  string
		set   env
		unset []string
		want  string
	}{
		{"no Laravel token", nil, []string{"WAGATE_LARAVEL_TOKEN"}, "WAGATE_LARAVEL_TOKEN: required (or WAGATE_LARAVEL_TOKEN_FILE)"},
		{"empty Laravel token", env{"WAGATE_LARAVEL_TOKEN": ""}, nil, "WAGATE_LARAVEL_TOKEN: required"},
		{"batch mode without Redis", env{"WAGATE_MODE": "batch"}, nil, "WAGATE_REDIS_URL: required in batch mode"},
		{"batch mode, embedded spelled 0", env{"WAGATE_MODE": "batch", "WAGATE_REDIS_EMBEDDED": "0"}, nil, "WAGATE_REDIS_URL: required in batch mode"},
		{"embedded and a URL", env{"WAGATE_MODE": "batch", "WAGATE_REDIS_EMBEDDED": "1", "WAGATE_REDIS_URL": "redis://127.0.0.1:6379/0"}, nil, "WAGATE_REDIS_EMBEDDED: set together with WAGATE_REDIS_URL: choose one"},
		{"misspelled setting", env{"WAGATE_QR_CODE": "3"}, nil, "WAGATE_QR_CODE: not a gateway setting; did you mean WAGATE_QR_CODES?"},
		{"misspelled secret file", env{"WAGATE_LARAVEL_TOKEN_FLIE": "/run/t"}, nil, "did you mean WAGATE_LARAVEL_TOKEN_FILE?"},
		{"renamed setting", env{"WAGATE_REDIS": "redis://x"}, nil, "WAGATE_REDIS: not a gateway setting; did you mean WAGATE_REDIS_URL?"},
		{"_FILE of a plain setting", env{"WAGATE_MODE_FILE": "/etc/mode"}, nil, "WAGATE_MODE_FILE: not a gateway setting; did you mean WAGATE_MODE?"},
		{"bad trusted proxy", env{"WAGATE_TRUSTED_PROXIES": "10.0.0.0/8, nginx"}, nil, `WAGATE_TRUSTED_PROXIES: "nginx" is not an IP address or CIDR prefix`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := minimal()
			for _, k := range tc.unset {
				delete(e, k)
			}
			for k, v := range tc.set {
				e[k] = v
			}
			_, _, err := load(t, e, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestSafeSettingsStart(t *testing.T) {
	cases := []struct {
		name  string
		set   env
		check func(Config) bool
	}{
		{"batch mode with a Redis URL", env{"WAGATE_MODE": "batch", "WAGATE_REDIS_URL": "redis://127.0.0.1:6379/0"},
			func(c Config) bool { return c.RedisURL != "" && !c.RedisEmbedded }},
		{"batch mode on the embedded Redis, explicitly", env{"WAGATE_MODE": "batch", "WAGATE_REDIS_EMBEDDED": "1"},
			func(c Config) bool { return c.RedisURL == "" && c.RedisEmbedded }},
		{"legacy mode needs no Redis", env{"WAGATE_MODE": "legacy"},
			func(c Config) bool { return c.RedisURL == "" && !c.RedisEmbedded }},
		{"Laravel token from a file", env{"WAGATE_LARAVEL_TOKEN": "", "WAGATE_LARAVEL_TOKEN_FILE": "/run/lt"},
			func(c Config) bool { return c.LaravelToken == "from-file" }},
		{"the config file variable is known", env{"WAGATE_CONFIG": "/etc/empty.yaml"},
			func(c Config) bool { return true }},
		{"laravel-up's exported env file is another tool's", env{"WAGATE_LARAVEL_DIR": "/tmp/wagate-laravel", "WAGATE_LARAVEL_DB": "/tmp/x.sqlite",
			"WAGATE_LARAVEL_WORKERS": "8", "WAGATE_LARAVEL_PROXY_TIMEOUT_MS": "60000", "WAGATE_LARAVEL_VERSION": "8.83"},
			func(c Config) bool { return c.LaravelURL == "http://127.0.0.1:8000" }},
		{"trusted proxies", env{"WAGATE_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8,::1"},
			func(c Config) bool { p, err := c.TrustedProxyPrefixes(); return err == nil && len(p) == 3 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := minimal()
			for k, v := range tc.set {
				e[k] = v
			}
			l, _, err := load(t, e, map[string]string{"/run/lt": "from-file\n", "/etc/empty.yaml": ""})
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(l.Config) {
				t.Errorf("%+v", l.Config)
			}
		})
	}
}

func TestTrustedProxyPrefixes(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"127.0.0.1", []string{"127.0.0.1/32"}},
		{"10.1.2.3/8", []string{"10.0.0.0/8"}},
		{" ::1 , fd00::/8 ,", []string{"::1/128", "fd00::/8"}},
		{"::ffff:192.168.0.1", []string{"192.168.0.1/32"}},
	}
	for _, tc := range cases {
		got, err := Config{TrustedProxies: tc.in}.TrustedProxyPrefixes()
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		var s []string
		for _, p := range got {
			s = append(s, p.String())
		}
		if strings.Join(s, " ") != strings.Join(tc.want, " ") {
			t.Errorf("%q: %v, want %v", tc.in, s, tc.want)
		}
	}
}

func TestNearestSetting(t *testing.T) {
	known := []string{"WAGATE_QR_CODES", "WAGATE_QR_TIMEOUT", "WAGATE_REDIS_URL", "WAGATE_LOG_LEVEL"}
	cases := map[string]string{
		"WAGATE_QR_CODE":     "WAGATE_QR_CODES",
		"WAGATE_QRTIMEOUT":   "WAGATE_QR_TIMEOUT",
		"WAGATE_REDISURL":    "WAGATE_REDIS_URL",
		"WAGATE_LOGLEVEL":    "WAGATE_LOG_LEVEL",
		"WAGATE_LOG_LEVELS":  "WAGATE_LOG_LEVEL",
		"WAGATE_REDIS_URI":   "WAGATE_REDIS_URL",
		"WAGATE_QR_TIMEOUTS": "WAGATE_QR_TIMEOUT",
	}
	for in, want := range cases {
		if got := nearest(in, known); got != want {
			t.Errorf("nearest(%q) = %q, want %q", in, got, want)
		}
	}
}
