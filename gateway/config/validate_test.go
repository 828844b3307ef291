package config

import (
	"strings"
	"testing"
	"time"
)

// Every refusal of Validate, word for word: each names the setting by its environment variable,
// whether the rule is the gateway's (positive values, URLs, combinations) or a component's
// (negative values and upper bounds, from session, batch, outbox, cache and api's Validate).
func TestValidateRefusesEachSettingByItsName(t *testing.T) {
	valid := func() Config {
		c := Default()
		c.APIToken, c.LaravelToken, c.LaravelURL = "0123456789abcdef", "laravel-token", "http://127.0.0.1:8000"
		return c
	}
	cases := []struct {
		name   string
		change func(c *Config)
		want   string
	}{
		{"bad listen address", func(c *Config) { c.Addr = "4000" }, `WAGATE_ADDR: "4000" is not host:port`},
		{"no API token", func(c *Config) { c.APIToken = "" }, "WAGATE_API_TOKEN: required (or WAGATE_API_TOKEN_FILE)"},
		{"short API token", func(c *Config) { c.APIToken = "short" }, "WAGATE_API_TOKEN: must be at least 16 characters"},
		{"no Laravel URL", func(c *Config) { c.LaravelURL = "" }, "WAGATE_LARAVEL_URL: required"},
		{"relative Laravel URL", func(c *Config) { c.LaravelURL = "localhost:8000" }, `WAGATE_LARAVEL_URL: "localhost:8000" must be an absolute http(s) URL`},
		{"no Laravel token", func(c *Config) { c.LaravelToken = "" },
			"WAGATE_LARAVEL_TOKEN: required (or WAGATE_LARAVEL_TOKEN_FILE): the bearer token Laravel expects from the gateway"},
		{"zero Laravel timeout", func(c *Config) { c.LaravelTimeout = 0 }, "WAGATE_LARAVEL_TIMEOUT: must be positive"},
		{"unknown mode", func(c *Config) { c.Mode = "turbo" }, `WAGATE_MODE: "turbo" must be legacy or batch`},
		{"Redis URL of another scheme", func(c *Config) { c.RedisURL = "http://x" }, "WAGATE_REDIS_URL: must be a redis://, rediss:// or unix:// URL"},
		{"embedded Redis and a URL", func(c *Config) { c.RedisURL, c.RedisEmbedded = "redis://x", true },
			"WAGATE_REDIS_EMBEDDED: set together with WAGATE_REDIS_URL: choose one"},
		{"batch mode without Redis", func(c *Config) { c.Mode = ModeBatch },
			"WAGATE_REDIS_URL: required in batch mode (or WAGATE_REDIS_URL_FILE); WAGATE_REDIS_EMBEDDED=1 runs an in-memory Redis without persistence, for tests and benchmarks only"},
		{"no store", func(c *Config) { c.DataDir = "" }, "WAGATE_DATA_DIR: required when WAGATE_STORE_DSN is empty"},
		{"cluster in legacy mode", func(c *Config) { clusterReady(c); c.Mode = ModeLegacy },
			"WAGATE_CLUSTER: needs WAGATE_MODE=batch (the replicas share the outbox and the cache in Redis)"},
		{"cluster on the embedded Redis", func(c *Config) { clusterReady(c); c.RedisURL, c.RedisEmbedded = "", true },
			"WAGATE_CLUSTER: needs a shared Redis (WAGATE_REDIS_URL), not the embedded one: the replicas coordinate in it"},
		{"cluster on SQLite", func(c *Config) { clusterReady(c); c.StoreDSN = "" },
			"WAGATE_CLUSTER: needs a Postgres store (WAGATE_STORE_DSN=postgres://...): SQLite is one process's file"},
		{"cluster on a SQLite file DSN", func(c *Config) { clusterReady(c); c.StoreDSN = "file:/tmp/x.db" },
			"WAGATE_CLUSTER: needs a Postgres store (WAGATE_STORE_DSN=postgres://...): SQLite is one process's file"},
		{"cluster without an advertise URL", func(c *Config) { clusterReady(c); c.AdvertiseURL = "" },
			"WAGATE_ADVERTISE_URL: required in cluster mode: the base URL the other replicas forward requests to"},
		{"relative advertise URL", func(c *Config) { clusterReady(c); c.AdvertiseURL = "10.0.0.5:4000" },
			`WAGATE_ADVERTISE_URL: "10.0.0.5:4000" must be an absolute http(s) URL`},
		{"settled journal rows kept shorter than Redis may lose", func(c *Config) { c.Batch.JournalSettledRetention = 2 * time.Second },
			"WAGATE_JOURNAL_SETTLED_RETENTION: must be between 10s and WAGATE_JOURNAL_RETENTION (2s)"},
		{"settled journal rows kept past the retention", func(c *Config) { c.Batch.JournalRetention = time.Hour; c.Batch.JournalSettledRetention = 2 * time.Hour },
			"WAGATE_JOURNAL_SETTLED_RETENTION: must be between 10s and WAGATE_JOURNAL_RETENTION (2h0m0s)"},
		{"zero settled journal retention", func(c *Config) { c.Batch.JournalSettledRetention = 0 }, "WAGATE_JOURNAL_SETTLED_RETENTION: must be positive"},
		{"zero shards", func(c *Config) { c.ClusterShards = 0 }, "WAGATE_CLUSTER_SHARDS: must be positive"},
		{"too many shards", func(c *Config) { c.ClusterShards = 65537 }, "WAGATE_CLUSTER_SHARDS: must be at most 65536 (65537)"},
		{"zero lease", func(c *Config) { c.ClusterLeaseTTL = 0 }, "WAGATE_CLUSTER_LEASE_TTL: must be positive"},
		{"zero handover rate", func(c *Config) { c.ClusterHandoverRate = 0 }, "WAGATE_CLUSTER_HANDOVER_RATE: must be positive"},
		{"handover rate above the shards", func(c *Config) { c.ClusterHandoverRate = 65537 }, "WAGATE_CLUSTER_HANDOVER_RATE: must be at most 65536 (65537)"},
		{"short lease", func(c *Config) { c.ClusterLeaseTTL = 500 * time.Millisecond }, "WAGATE_CLUSTER_LEASE_TTL: must be at least 1s (500ms)"},
		{"negative restart grace", func(c *Config) { c.ClusterRestartGrace = -time.Second }, "WAGATE_CLUSTER_RESTART_GRACE: must be between 0 and 10m0s (-1s)"},
		{"restart grace past the bound", func(c *Config) { c.ClusterRestartGrace = time.Hour }, "WAGATE_CLUSTER_RESTART_GRACE: must be between 0 and 10m0s (1h0m0s)"},
		{"zero first QR", func(c *Config) { c.QRFirst = 0 }, "WAGATE_QR_FIRST_TIMEOUT: must be positive"},
		{"negative next QR", func(c *Config) { c.QRNext = -time.Second }, "WAGATE_QR_TIMEOUT: must be positive"},
		{"zero QR codes", func(c *Config) { c.QRCodes = 0 }, "WAGATE_QR_CODES: must be positive"},
		{"too many QR codes", func(c *Config) { c.QRCodes = 101 }, "WAGATE_QR_CODES: must be at most 100 (101)"},
		{"zero pair login", func(c *Config) { c.PairLoginTimeout = 0 }, "WAGATE_PAIR_LOGIN_TIMEOUT: must be positive"},
		{"zero restores", func(c *Config) { c.RestoreConcurrency = 0 }, "WAGATE_RESTORE_CONCURRENCY: must be positive"},
		{"too many restores", func(c *Config) { c.RestoreConcurrency = 10_001 }, "WAGATE_RESTORE_CONCURRENCY: must be at most 10000 (10001)"},
		{"zero batch size", func(c *Config) { c.Batch.Size = 0 }, "WAGATE_BATCH_SIZE: must be positive"},
		{"batch above the contract", func(c *Config) { c.Batch.Size = 501 }, "WAGATE_BATCH_SIZE: must be at most the contract's 500 items (501)"},
		{"zero batch interval", func(c *Config) { c.Batch.Interval = 0 }, "WAGATE_BATCH_INTERVAL: must be positive"},
		{"zero priority interval", func(c *Config) { c.Batch.PriorityInterval = 0 }, "WAGATE_PRIORITY_INTERVAL: must be positive"},
		{"zero message interval", func(c *Config) { c.Batch.MessageInterval = 0 }, "WAGATE_MESSAGE_INTERVAL: must be positive"},
		{"zero outbox", func(c *Config) { c.Batch.OutboxMax = 0 }, "WAGATE_OUTBOX_MAX: must be positive"},
		{"zero poison horizon", func(c *Config) { c.Batch.PoisonHorizon = 0 }, "WAGATE_POISON_HORIZON: must be positive"},
		{"zero Retry-After cap", func(c *Config) { c.Batch.MaxRetryAfter = 0 }, "WAGATE_MAX_RETRY_AFTER: must be positive"},
		{"long gateway id", func(c *Config) { c.GatewayID = strings.Repeat("g", 129) },
			"WAGATE_GATEWAY_ID: must be at most 128 characters (129 characters)"},
		{"negative QR TTL", func(c *Config) { c.Cache.QRTTL = -time.Second }, "WAGATE_CACHE_TTL_QR: must not be negative (-1s)"},
		{"negative status TTL", func(c *Config) { c.Cache.StatusTTL = -time.Second }, "WAGATE_CACHE_TTL_STATUS: must not be negative (-1s)"},
		{"negative connection TTL", func(c *Config) { c.Cache.ConnectionTTL = -time.Second }, "WAGATE_CACHE_TTL_CONNECTION: must not be negative (-1s)"},
		{"negative session TTL", func(c *Config) { c.Cache.SessionTTL = -time.Second }, "WAGATE_CACHE_TTL_SESSION: must not be negative (-1s)"},
		{"negative write timeout", func(c *Config) { c.Cache.WriteTimeout = -time.Second }, "WAGATE_CACHE_WRITE_TIMEOUT: must not be negative (-1s)"},
		{"zero shutdown", func(c *Config) { c.ShutdownTimeout = 0 }, "WAGATE_SHUTDOWN_TIMEOUT: must be positive"},
		{"negative rate", func(c *Config) { c.RateLimit = -1 }, "WAGATE_RATE_LIMIT: must not be negative (-1)"},
		{"negative burst", func(c *Config) { c.RateLimitBurst = -1 }, "WAGATE_RATE_LIMIT_BURST: must not be negative (-1)"},
		{"bad trusted proxy", func(c *Config) { c.TrustedProxies = "nginx" }, `WAGATE_TRUSTED_PROXIES: "nginx" is not an IP address or CIDR prefix`},
		{"pprof without port", func(c *Config) { c.PprofAddr = "127.0.0.1" }, `WAGATE_PPROF_ADDR: "127.0.0.1" is not host:port`},
		{"pprof on a public address", func(c *Config) { c.PprofAddr = "0.0.0.0:6060" },
			`WAGATE_PPROF_ADDR: "0.0.0.0:6060" must be a loopback address (127.0.0.1, ::1 or localhost): profiles expose internals`},
		{"unknown log level", func(c *Config) { c.LogLevel = "loud" }, `WAGATE_LOG_LEVEL: "loud" must be debug, info, warn or error`},
		{"unknown log format", func(c *Config) { c.LogFormat = "xml" }, `WAGATE_LOG_FORMAT: "xml" must be text or json`},
		{"dial without the switch", func(c *Config) { c.WADial = "127.0.0.1:1" },
			"WAGATE_WA_DIAL/WAGATE_WA_ROOT_PUBKEY: test-only settings are refused without WAGATE_WA_INSECURE_TEST=1"},
		{"switch without dial", func(c *Config) { c.WAInsecureTest = true }, "WAGATE_WA_INSECURE_TEST: needs both WAGATE_WA_DIAL and WAGATE_WA_ROOT_PUBKEY"},
		{"test keepalive without the switch", func(c *Config) { c.WATestKeepalive = time.Second },
			"WAGATE_WA_TEST_KEEPALIVE: a test-only setting, refused without WAGATE_WA_INSECURE_TEST=1"},
		{"test keepalive below its bound", func(c *Config) { onFakeWhatsApp(c); c.WATestKeepalive = time.Millisecond },
			"WAGATE_WA_TEST_KEEPALIVE: must be 0 or between 100ms and 20s (1ms)"},
		{"negative test keepalive", func(c *Config) { onFakeWhatsApp(c); c.WATestKeepalive = -time.Second },
			"WAGATE_WA_TEST_KEEPALIVE: must be 0 or between 100ms and 20s (-1s)"},
	}
	if err := valid().Validate(); err != nil {
		t.Fatalf("the defaults with the required settings are refused: %v", err)
	}
	onFake := valid()
	onFakeWhatsApp(&onFake)
	onFake.WATestKeepalive = 500 * time.Millisecond
	if err := onFake.Validate(); err != nil {
		t.Fatalf("a test keepalive with the test-only switch is refused: %v", err)
	}
	clustered := valid()
	clusterReady(&clustered)
	if err := clustered.Validate(); err != nil {
		t.Fatalf("a complete cluster configuration is refused: %v", err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.change(&c)
			if err := c.Validate(); err == nil || err.Error() != tc.want {
				t.Errorf("Validate() = %v\nwant        %s", err, tc.want)
			}
		})
	}
}

// A setting is refused once, by its first rule, and the refusals come in the settings table's order.
func TestValidateRefusesASettingOnceInTableOrder(t *testing.T) {
	c := Default()
	c.QRCodes = -1 // the gateway's "positive" and session's "not negative": one refusal
	c.Addr = "x"
	want := `WAGATE_ADDR: "x" is not host:port
WAGATE_API_TOKEN: required (or WAGATE_API_TOKEN_FILE)
WAGATE_LARAVEL_URL: required
WAGATE_LARAVEL_TOKEN: required (or WAGATE_LARAVEL_TOKEN_FILE): the bearer token Laravel expects from the gateway
WAGATE_QR_CODES: must be positive`
	if err := c.Validate(); err == nil || err.Error() != want {
		t.Errorf("Validate() = %v\nwant\n%s", err, want)
	}
}

// onFakeWhatsApp points c at a fake WhatsApp server with the test-only switch on.
func onFakeWhatsApp(c *Config) {
	c.WAInsecureTest, c.WADial, c.WARootPubKey = true, "127.0.0.1:1", strings.Repeat("01", 32)
}

// clusterReady makes c a complete cluster-mode configuration (batch mode, a Redis URL, a
// Postgres store, an advertise URL).
func clusterReady(c *Config) {
	c.Cluster, c.Mode, c.RedisURL = true, ModeBatch, "redis://127.0.0.1:6379"
	c.StoreDSN, c.AdvertiseURL = "postgres://wagate@127.0.0.1:5432/wagate", "http://127.0.0.1:4000"
}
