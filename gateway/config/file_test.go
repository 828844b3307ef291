package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// decode applies a YAML configuration over the defaults.
func decode(t *testing.T, doc string) (Config, error) {
	t.Helper()
	c := Default()
	err := yaml.Unmarshal([]byte(doc), &c)
	return c, err
}

// A setting's YAML key is its flag name in camelCase, the key style of the scenarios and bench
// matrices written beside the file.
func TestYAMLKeyIsTheFlagNameInCamelCase(t *testing.T) {
	cases := []struct{ flag, key string }{
		{"mode", "mode"},
		{"batch-size", "batchSize"},
		{"batch-interval", "batchInterval"},
		{"qr-first-timeout", "qrFirstTimeout"},
		{"cache-ttl-qr", "cacheTtlQr"},
		{"wa-root-pubkey", "waRootPubkey"},
		{"api-token", "apiToken"},
		{"batch_size", "batchSize"},
		{"-leading", "leading"},
	}
	for _, tc := range cases {
		if got := YAMLKey(tc.flag); got != tc.key {
			t.Errorf("YAMLKey(%q) = %q, want %q", tc.flag, got, tc.key)
		}
	}
	for _, s := range settings() {
		if k := s.yamlName(); strings.ContainsAny(k, "-_") || k != YAMLKey(s.flag) {
			t.Errorf("setting -%s: YAML key %q is not its flag name in camelCase", s.flag, k)
		}
	}
}

// Each key of the YAML file is the setting's flag name in camelCase, and sets that setting.
func TestYAMLKeysAreTheSettingsTablesNames(t *testing.T) {
	cases := []struct {
		yaml string
		ok   func(c Config) bool
	}{
		{"mode: batch", func(c Config) bool { return c.Mode == ModeBatch }},
		{"batchSize: 20", func(c Config) bool { return c.Batch.Size == 20 }},
		{"batchInterval: 1s", func(c Config) bool { return c.Batch.Interval == time.Second }},
		{"priorityInterval: 300ms", func(c Config) bool { return c.Batch.PriorityInterval == 300*time.Millisecond }},
		{"maxRetryAfter: 5s", func(c Config) bool { return c.Batch.MaxRetryAfter == 5*time.Second }},
		{"outboxMax: 200", func(c Config) bool { return c.Batch.OutboxMax == 200 }},
		{"qrFirstTimeout: 6s", func(c Config) bool { return c.QRFirst == 6*time.Second }},
		{"qrTimeout: 2s", func(c Config) bool { return c.QRNext == 2*time.Second }},
		{"qrCodes: 3", func(c Config) bool { return c.QRCodes == 3 }},
		{"cacheTtlQr: 20s", func(c Config) bool { return c.Cache.QRTTL == 20*time.Second }},
		{"cacheTtlSession: 1m", func(c Config) bool { return c.Cache.SessionTTL == time.Minute }},
		{"rateLimit: 20000", func(c Config) bool { return c.RateLimit == 20000 }},
		{"redisEmbedded: true", func(c Config) bool { return c.RedisEmbedded }},
		{"waDebug: yes", nil}, // YAML 1.1's yes is no boolean of the gateway's: refused below
		{"gatewayId: gw-1", func(c Config) bool { return c.GatewayID == "gw-1" }},
		{"trustedProxies: 10.0.0.0/8, 127.0.0.1", func(c Config) bool { return c.TrustedProxies == "10.0.0.0/8, 127.0.0.1" }},
		{"apiToken: 0123456789abcdef", func(c Config) bool { return c.APIToken == "0123456789abcdef" }},
	}
	for _, tc := range cases {
		c, err := decode(t, tc.yaml)
		if tc.ok == nil {
			if err == nil {
				t.Errorf("%q: accepted", tc.yaml)
			}
			continue
		}
		if err != nil || !tc.ok(c) {
			t.Errorf("%q: err %v, config %+v", tc.yaml, err, c)
		}
	}
	// One key per setting: every row's key is its own.
	var keys []string
	for _, s := range settings() {
		if slices.Contains(keys, s.yamlName()) {
			t.Errorf("key %s names two settings", s.yamlName())
		}
		keys = append(keys, s.yamlName())
	}
}

// A key that is no setting stops the configuration, naming the nearest key, like an unknown
// WAGATE_* variable does; so do values that are not the setting's type, with their line.
func TestUnknownOrMistypedKeysAreRefusedWithTheNearestKey(t *testing.T) {
	cases := []struct{ yaml, want string }{
		{"batch_size: 20", "batch_size (line 1): not a gateway setting; did you mean batchSize?"},
		{"batchsize: 20", "did you mean batchSize?"},
		{"mode: batch\npriority-interval: 1s", "priority-interval (line 2): not a gateway setting; did you mean priorityInterval?"},
		{"cache_ttl: 5s", "did you mean cacheTtlQr?"},
		{"ttl: 5s", "did you mean cacheTtlQr?"},
		{"redis_embedded: true", "did you mean redisEmbedded?"},
		{"cache-ttl-qr: 1s", "did you mean cacheTtlQr?"},
		{"max-retry: 5s", "did you mean maxRetryAfter?"},
		{"batchInterval: soon", `batchInterval (line 1): "soon" is not a duration (e.g. 500ms, 5s, 2m)`},
		{"qrCodes: [1, 2]", "qrCodes (line 1): must be a single value"},
		{"mode: batch\nmode: legacy", "mode (line 2): set twice"},
		{"- mode", "a mapping of settings"},
	}
	for _, tc := range cases {
		_, err := decode(t, tc.yaml)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want %q", tc.yaml, err, tc.want)
		}
		var ke *KeyError
		if err != nil && !errors.As(err, &ke) {
			t.Errorf("%q: %T is no *KeyError", tc.yaml, err)
		}
	}
}

// A configuration file written by YAML reads back as the same configuration, secrets and the
// settings left out keeping the reader's values; secrets travel in Environ instead.
func TestYAMLRoundTripsWithoutSecrets(t *testing.T) {
	c := Default()
	c.Mode, c.Batch.Size, c.Batch.PriorityInterval, c.RedisEmbedded = ModeBatch, 20, 300*time.Millisecond, true
	c.TrustedProxies, c.GatewayID, c.Cache.QRTTL = "10.0.0.0/8", "true", 20*time.Second // "true" stays a string
	c.APIToken, c.LaravelToken, c.RedisURL = "0123456789abcdef-api", "laravel-token-x", "redis://:pw@127.0.0.1:6379"
	c.Addr = "127.0.0.1:4001"
	file := c.YAML(&c.Addr)
	for _, secret := range []string{"0123456789abcdef-api", "laravel-token-x", "pw@", "127.0.0.1:4001", "\naddr:"} {
		if strings.Contains("\n"+string(file), secret) {
			t.Errorf("the file holds %q:\n%s", secret, file)
		}
	}
	back, err := decode(t, string(file))
	if err != nil {
		t.Fatalf("%v\n%s", err, file)
	}
	want := c
	want.APIToken, want.LaravelToken, want.RedisURL, want.Addr = "", "", "", Default().Addr
	if back != want {
		t.Errorf("read back\n%+v\nwant\n%+v\nfile:\n%s", back, want, file)
	}
	got := c.Environ(c.Secrets()...)
	for _, v := range []string{"WAGATE_API_TOKEN=0123456789abcdef-api", "WAGATE_LARAVEL_TOKEN=laravel-token-x", "WAGATE_REDIS_URL=redis://:pw@127.0.0.1:6379"} {
		if !slices.Contains(got, v) {
			t.Errorf("Environ(Secrets) %q lacks %q", got, v)
		}
	}
	if got := c.Environ(&c.Addr, &c.Batch.Size); !slices.Equal(got, []string{"WAGATE_ADDR=127.0.0.1:4001", "WAGATE_BATCH_SIZE=20"}) {
		t.Errorf("Environ: %q", got)
	}
	if k := c.Key(&c.Batch.PriorityInterval); k != "priorityInterval" {
		t.Errorf("Key: %s", k)
	}
}

// Validate names a setting where it was given: by its key and file when the YAML file gave it, by
// its variable when the environment did (the environment overrides the file); ValidateFile names
// every setting by its key.
func TestRefusalsNameTheKeyOfTheFileThatGaveIt(t *testing.T) {
	files := map[string]string{"/etc/wagate.yaml": "qrCodes: 0\nmode: batch\n"}
	_, _, err := load(t, minimal(), files, "-config", "/etc/wagate.yaml")
	for _, want := range []string{"qrCodes in /etc/wagate.yaml: must be positive",
		"WAGATE_REDIS_URL: required in batch mode (or WAGATE_REDIS_URL_FILE); WAGATE_REDIS_EMBEDDED=1 runs"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err %v, want %q", err, want)
		}
	}
	e := minimal()
	e["WAGATE_QR_CODES"] = "-1"
	_, _, err = load(t, e, files, "-config", "/etc/wagate.yaml")
	if err == nil || !strings.Contains(err.Error(), "WAGATE_QR_CODES: must be positive") || strings.Contains(err.Error(), "qrCodes in") {
		t.Errorf("overridden by the environment: %v", err)
	}

	c, err := decode(t, "mode: batch\nbatchSize: 501\n")
	if err != nil {
		t.Fatal(err)
	}
	err = c.ValidateFile()
	for _, want := range []string{"batchSize: must be at most the contract's 500 items (501)", "apiToken: required\n",
		"redisUrl: required in batch mode; redisEmbedded: true runs"} {
		if err == nil || !strings.Contains(err.Error()+"\n", want) {
			t.Errorf("ValidateFile: %v, want %q", err, want)
		}
	}
}
