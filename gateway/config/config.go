// Package config owns the gateway's settings: their defaults (the seed's), and loading them from
// an optional YAML file, WAGATE_* environment variables and command-line flags, in that order of
// increasing precedence. Secrets (tokens, the HMAC secret, DSNs with passwords) come only from the
// environment, from files (WAGATE_*_FILE or -*-file) or from the YAML file, never from plain flags
// (visible in ps), and are never rendered in logs. Invalid values fail Load with a message that
// names the setting.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"wagate/gateway/api"
	"wagate/gateway/cache"
	"wagate/gateway/cluster"
	"wagate/gateway/delivery/batch"
	"wagate/gateway/internal/configcheck"
	"wagate/gateway/laravel"
	"wagate/gateway/outbox"
	"wagate/gateway/sendonce"
	"wagate/gateway/session"
	"wagate/gateway/storage"
	"wagate/gateway/wadial"
	"wagate/gateway/whatsapp"
)

// Modes of delivery.
const (
	ModeLegacy = "legacy"
	ModeBatch  = "batch"
)

// Config is every gateway setting.
type Config struct {
	// Addr is the REST API's listen address.
	Addr string
	// APIToken is the bearer token of the REST API (secret, at least 16 characters).
	APIToken string

	// LaravelURL is the Laravel application's base URL.
	LaravelURL string
	// LaravelToken is the bearer token sent to Laravel (secret).
	LaravelToken string
	// LaravelSecret, when set, HMAC-signs every request body to Laravel (secret).
	LaravelSecret string
	// LaravelTimeout bounds one request to Laravel.
	LaravelTimeout time.Duration

	// Mode selects the delivery: legacy or batch.
	Mode string
	// RedisURL is the Redis of batch mode (outbox, cache).
	RedisURL string
	// RedisEmbedded allows batch mode without RedisURL: an in-process miniredis without
	// persistence, for tests and benchmarks only (the outbox dies with the process).
	RedisEmbedded bool
	// RedisStartTimeout is how long a start waits for Redis to answer its first ping (each
	// attempt logged) before it gives up; 0 pings once (5 s) and exits on no answer.
	RedisStartTimeout time.Duration
	// GatewayID names this gateway among the replicas sharing one Redis, the same across its
	// restarts: its outbox consumer names are "<id>/<host>/<pid>/<start>/<n>", and a start takes
	// over what an earlier process of the same id left pending (it must be unique among live
	// gateways, or share their host and pid namespace); empty
	// means the host name.
	GatewayID string
	// Cluster runs this gateway as one replica among several sharing one Redis and one Postgres
	// (docs/cluster.md): each WhatsApp session runs on the replica holding its shard.
	Cluster bool
	// AdvertiseURL is the base URL the other replicas reach this one's API at (cluster mode).
	AdvertiseURL string
	// ClusterShards is S, the number of shards sessions hash to (cluster mode); fixed per
	// installation: a start with another S is refused.
	ClusterShards int
	// ClusterLeaseTTL is a replica's member lease in Redis (cluster mode); it renews every
	// TTL/5 and fences itself after 0.6 TTL without a successful renew.
	ClusterLeaseTTL time.Duration
	// ClusterHandoverRate is the most shards a replica hands over per second (cluster mode): a
	// join or a leave moves sessions at this bounded rate.
	ClusterHandoverRate int
	// ClusterRestartGrace is how long a replica stopped by SIGTERM keeps its shards for its own
	// restart (cluster mode): only a replica with the same gateway id claims them meanwhile, so a
	// rolling update moves each session once; 0 hands them to the others at once.
	ClusterRestartGrace time.Duration
	// DataDir holds the SQLite store.
	DataDir string
	// StoreDSN selects Postgres (or an explicit SQLite file) for the stores (secret).
	StoreDSN string

	// QRFirst, QRNext and QRCodes time the QR rotation.
	QRFirst time.Duration
	QRNext  time.Duration
	QRCodes int
	// PairLoginTimeout is how long a connection of a paired device (freshly paired, or any
	// reconnect) may take to log in before the gateway closes it and connects again.
	PairLoginTimeout time.Duration
	// RestoreConcurrency bounds paired sessions connecting at once (restore and reconnects).
	RestoreConcurrency int

	// Batch tunes batch mode.
	Batch Batch
	// Cache tunes batch mode's cache TTLs (zero: the cache's defaults).
	Cache Cache

	// SendIdempotencyTTL is how long the answer of a send with an Idempotency-Key is kept (in
	// Redis in batch mode, in the process in legacy mode).
	SendIdempotencyTTL time.Duration

	// ShutdownTimeout bounds a graceful shutdown.
	ShutdownTimeout time.Duration
	// LogLevel is debug, info, warn or error; LogFormat text or json.
	LogLevel  string
	LogFormat string
	// WADebug passes whatsmeow's own info/debug logs through.
	WADebug bool

	// PprofAddr, when set, serves net/http/pprof on this loopback address (off by default).
	PprofAddr string
	// SteadySysmon keeps the Go runtime's system monitor at its steady period (the process
	// starts itself again once with GODEBUG's scheduler trace set: gateway/internal/sysmon).
	SteadySysmon bool
	// RateLimit and RateLimitBurst bound each API client's authenticated requests per second
	// (0: the API's defaults; a rate without a burst gets a burst of twice the rate).
	RateLimit      int
	RateLimitBurst int
	// TrustedProxies lists the proxies (comma-separated IP addresses or CIDR prefixes) whose
	// X-Forwarded-For header names the client for the rate limit; empty trusts none.
	TrustedProxies string

	// WADial, WARootPubKey and WAInsecureTest point whatsmeow at a fake WhatsApp server.
	// TEST-ONLY: honoured only with WAInsecureTest.
	WADial         string
	WARootPubKey   string
	WAInsecureTest bool
	// WATestKeepalive, when not zero, shortens whatsmeow's keepalive (pings every interval to 1.5
	// intervals, dead after 9 intervals of failures: whatsapp.ScaledKeepaliveTiming) so a fake
	// WhatsApp's silence is noticed in seconds. TEST-ONLY: refused without WAInsecureTest.
	WATestKeepalive time.Duration
}

// Batch tunes batch delivery.
type Batch struct {
	// Size is the most items per batch.
	Size int
	// Interval is the longest a normal event waits.
	Interval time.Duration
	// PriorityInterval bounds how long a HIGH event waits.
	PriorityInterval time.Duration
	// MessageInterval is the longest an incoming message or receipt waits for its batch.
	MessageInterval time.Duration
	// OutboxMax bounds the undelivered events in the outbox; when it is full, accepting an event
	// waits up to 5 s for room and then fails (logged, counted), never dropped silently.
	OutboxMax int
	// PoisonHorizon is how long a 5xx must persist for one batch, while others are delivered,
	// before it is split to find a poison item (and that item, failing alone, dead-lettered).
	PoisonHorizon time.Duration
	// MaxRetryAfter caps a Retry-After: the longest every send to Laravel is paused.
	MaxRetryAfter time.Duration
	// JournalRetention is how long the message journal keeps a customer's message or receipt
	// nothing settled (Laravel never applied nor refused it) before it is pruned.
	JournalRetention time.Duration
	// JournalSettledRetention is how long the message journal keeps the row of an item Laravel
	// applied after its settlement, so an entry of it that Redis brings back after losing its
	// last writes is acknowledged away instead of sent again.
	JournalSettledRetention time.Duration
	// RetryBudgetPercent, RetryBudgetMinPerSecond and RetryBudgetBurst are the retry budget
	// (package retrybudget): retries add at most that percentage of the first attempts plus that
	// many per second, at most that many at once; a retry refused waits, never dropped.
	RetryBudgetPercent      int
	RetryBudgetMinPerSecond int
	RetryBudgetBurst        int
}

// Cache tunes the batch mode cache; zero values take the cache package's defaults.
type Cache struct {
	QRTTL         time.Duration
	StatusTTL     time.Duration
	ConnectionTTL time.Duration
	SessionTTL    time.Duration
	// WriteTimeout bounds the cache write-through of one event before it is appended.
	WriteTimeout time.Duration
}

// DefaultRedisStartTimeout is how long a start waits for Redis by default: long enough to ride
// out a Redis restart or pause, short enough that a wrong URL still fails the start visibly.
const DefaultRedisStartTimeout = time.Minute

// Default returns the defaults (the seed's where it had them): each component's DefaultConfig
// where the component owns the setting.
func Default() Config {
	sessions, batches, caches := session.DefaultConfig(), batch.DefaultConfig(), cache.DefaultConfig()
	return Config{
		Addr:                ":4000",
		LaravelTimeout:      laravel.DefaultTimeout,
		RedisStartTimeout:   DefaultRedisStartTimeout,
		Mode:                ModeLegacy,
		DataDir:             "./data",
		ClusterShards:       cluster.DefaultShards,
		ClusterLeaseTTL:     cluster.DefaultLeaseTTL,
		ClusterHandoverRate: cluster.DefaultHandoverRate,
		ClusterRestartGrace: cluster.DefaultRestartGrace,
		QRFirst:             sessions.QRFirst,
		QRNext:              sessions.QRNext,
		QRCodes:             sessions.QRCodes,
		PairLoginTimeout:    sessions.PairLoginTimeout,
		RestoreConcurrency:  sessions.RestoreConcurrency,
		Batch: Batch{Size: batches.BatchSize, Interval: batches.BatchInterval, PriorityInterval: batches.PriorityInterval,
			MessageInterval: batches.MessageInterval, OutboxMax: outbox.DefaultMax, PoisonHorizon: batches.PoisonHorizon, MaxRetryAfter: batches.MaxRetryAfter,
			JournalRetention: storage.DefaultJournalRetention, RetryBudgetPercent: batches.RetryBudget.Percent,
			RetryBudgetMinPerSecond: batches.RetryBudget.MinPerSecond, RetryBudgetBurst: batches.RetryBudget.Burst,
			JournalSettledRetention: storage.DefaultJournalSettledRetention},
		Cache: Cache{QRTTL: caches.QRTTL, StatusTTL: caches.StatusTTL, ConnectionTTL: caches.ConnectionTTL, SessionTTL: caches.SessionTTL,
			WriteTimeout: caches.WriteTimeout},
		RateLimit:          int(api.DefaultConfig().RateLimit.PerSecond),
		SendIdempotencyTTL: sendonce.DefaultTTL,
		ShutdownTimeout:    20 * time.Second,
		LogLevel:           "info",
		LogFormat:          "text",
		SteadySysmon:       true,
	}
}

// setting describes one configurable value: its names (flag, environment, YAML), its help, the
// Config field it fills, and the rules Validate applies to it alone.
type setting struct {
	flag   string // flag name; the env var is WAGATE_ + upper(flag with - as _) unless env is set
	env    string
	yaml   string // YAML key; YAMLKey(flag) unless set
	usage  string
	secret bool
	value  func(c *Config) any // pointer to the field
	// positive refuses zero and below: the gateway's default is already in the field, so zero
	// would be a mistake, not "the component's default".
	positive bool
	// fills names the component settings ("session.QRCodes", the component's configcheck name
	// and field) this value fills: their Validate errors are reported under this setting's name.
	fills []string
}

func (s setting) envName() string {
	if s.env != "" {
		return s.env
	}
	return "WAGATE_" + strings.ToUpper(strings.ReplaceAll(s.flag, "-", "_"))
}

func (s setting) yamlName() string {
	if s.yaml != "" {
		return s.yaml
	}
	return YAMLKey(s.flag)
}

func settings() []setting {
	return []setting{
		{flag: "addr", usage: "REST API listen address", value: func(c *Config) any { return &c.Addr }},
		{flag: "api-token", secret: true, usage: "bearer token clients must send to the REST API (at least 16 characters)", value: func(c *Config) any { return &c.APIToken }},
		{flag: "laravel-url", usage: "Laravel base URL, e.g. https://app.example.com", value: func(c *Config) any { return &c.LaravelURL }},
		{flag: "laravel-token", secret: true, usage: "bearer token sent to Laravel", value: func(c *Config) any { return &c.LaravelToken }},
		{flag: "laravel-secret", secret: true, usage: "HMAC-SHA256 secret signing request bodies to Laravel (optional)", value: func(c *Config) any { return &c.LaravelSecret }},
		{flag: "laravel-timeout", usage: "timeout of one request to Laravel", value: func(c *Config) any { return &c.LaravelTimeout }, positive: true, fills: []string{"batch.ClaimMinIdle", "outbox.ConsumerGoneAfter"}},
		{flag: "mode", usage: "delivery mode: legacy (one request per event) or batch (outbox + batches + cache)", value: func(c *Config) any { return &c.Mode }},
		{flag: "redis-url", secret: true, usage: "Redis URL for batch mode (redis://...); required in batch mode unless redis-embedded is set", value: func(c *Config) any { return &c.RedisURL }},
		{flag: "redis-start-timeout", usage: "how long a start waits for Redis to answer (retrying, each attempt logged) before it exits; 0: one 5 s ping", value: func(c *Config) any { return &c.RedisStartTimeout }},
		{flag: "redis-embedded", usage: "batch mode without a Redis URL: an embedded in-memory Redis, NO persistence (tests and benchmarks only)", value: func(c *Config) any { return &c.RedisEmbedded }},
		{flag: "cluster", usage: "cluster mode: one replica of several sharing one Redis and one Postgres; each session runs on the replica holding its shard (needs batch mode, a Redis URL, a Postgres store-dsn and advertise-url)", value: func(c *Config) any { return &c.Cluster }},
		{flag: "advertise-url", usage: "cluster mode: the base URL the other replicas reach this replica's API at, e.g. http://10.0.0.5:4000", value: func(c *Config) any { return &c.AdvertiseURL }},
		{flag: "cluster-shards", usage: "cluster mode: shards the sessions hash to, fixed per installation (a start with another number is refused)", value: func(c *Config) any { return &c.ClusterShards }, positive: true},
		{flag: "cluster-lease-ttl", usage: "cluster mode: a replica's member lease in Redis; renewed every TTL/5, the replica fences itself after 0.6 TTL without a renew", value: func(c *Config) any { return &c.ClusterLeaseTTL }, positive: true},
		{flag: "cluster-handover-rate", usage: "cluster mode: the most shards a replica hands over per second when assignment changes (a join or a leave)", value: func(c *Config) any { return &c.ClusterHandoverRate }, positive: true},
		{flag: "cluster-restart-grace", usage: "cluster mode: how long a replica stopped by SIGTERM keeps its shards for its own restart (same gateway id), so a rolling update moves each session once; 0: the others take them at once", value: func(c *Config) any { return &c.ClusterRestartGrace }},
		{flag: "data-dir", usage: "directory of the SQLite store (wagate.db)", value: func(c *Config) any { return &c.DataDir }},
		{flag: "store-dsn", secret: true, usage: "postgres://... DSN for the session and device store (default: SQLite in the data dir)", value: func(c *Config) any { return &c.StoreDSN }},
		{flag: "qr-first-timeout", usage: "how long the first QR code of a pairing is shown", value: func(c *Config) any { return &c.QRFirst }, positive: true, fills: []string{"session.QRFirst"}},
		{flag: "qr-timeout", usage: "how long each following QR code is shown", value: func(c *Config) any { return &c.QRNext }, positive: true, fills: []string{"session.QRNext"}},
		{flag: "qr-codes", usage: "QR codes shown per pairing before the session is expired", value: func(c *Config) any { return &c.QRCodes }, positive: true, fills: []string{"session.QRCodes"}},
		{flag: "pair-login-timeout", usage: "reconnect a paired device whose connection has not logged in after this long (a login WhatsApp accepted that the client is still finishing is waited for)", value: func(c *Config) any { return &c.PairLoginTimeout }, positive: true, fills: []string{"session.PairLoginTimeout"}},
		{flag: "restore-concurrency", usage: "paired sessions connecting at once: restored after a start, or reconnecting after their connections dropped", value: func(c *Config) any { return &c.RestoreConcurrency }, positive: true, fills: []string{"session.RestoreConcurrency"}},
		{flag: "batch-size", usage: "batch mode: most items per batch", value: func(c *Config) any { return &c.Batch.Size }, positive: true, fills: []string{"batch.BatchSize"}},
		{flag: "batch-interval", usage: "batch mode: longest wait of a normal event", value: func(c *Config) any { return &c.Batch.Interval }, positive: true, fills: []string{"batch.BatchInterval"}},
		{flag: "priority-interval", usage: "batch mode: longest wait of a HIGH event (connected, disconnected, logged_out)", value: func(c *Config) any { return &c.Batch.PriorityInterval }, positive: true, fills: []string{"batch.PriorityInterval"}},
		{flag: "message-interval", usage: "batch mode: longest wait of an incoming message or receipt", value: func(c *Config) any { return &c.Batch.MessageInterval }, positive: true, fills: []string{"batch.MessageInterval"}},
		{flag: "outbox-max", usage: "batch mode: most undelivered events held in the outbox (then accepting waits 5 s, then fails)", value: func(c *Config) any { return &c.Batch.OutboxMax }, positive: true, fills: []string{"outbox.Max"}},
		{flag: "poison-horizon", usage: "batch mode: how long a 5xx must persist for one batch while others are delivered before it is split and an item failing alone is dead-lettered", value: func(c *Config) any { return &c.Batch.PoisonHorizon }, positive: true, fills: []string{"batch.PoisonHorizon"}},
		{flag: "max-retry-after", usage: "batch mode: the longest a Laravel Retry-After pauses every send", value: func(c *Config) any { return &c.Batch.MaxRetryAfter }, positive: true, fills: []string{"batch.MaxRetryAfter"}},
		{flag: "retry-budget-percent", usage: "batch mode: retries to Laravel may add at most this percentage of the first attempts (plus retry-budget-min-per-second); a retry over the budget waits, never dropped", value: func(c *Config) any { return &c.Batch.RetryBudgetPercent }, positive: true, fills: []string{"retrybudget.Percent"}},
		{flag: "retry-budget-min-per-second", usage: "batch mode: retries to Laravel allowed every second whatever the first attempts (the retry budget's floor)", value: func(c *Config) any { return &c.Batch.RetryBudgetMinPerSecond }, positive: true, fills: []string{"retrybudget.MinPerSecond"}},
		{flag: "retry-budget-burst", usage: "batch mode: the most retries to Laravel the retry budget lets go at once", value: func(c *Config) any { return &c.Batch.RetryBudgetBurst }, positive: true, fills: []string{"retrybudget.Burst"}},
		{flag: "journal-retention", usage: "batch mode: how long the message journal (customers' messages and receipts kept in the store until Laravel settled them, appended again if Redis loses its data) keeps an item nothing settled", value: func(c *Config) any { return &c.Batch.JournalRetention }, positive: true},
		{flag: "journal-settled-retention", usage: "batch mode: how long the message journal keeps an item Laravel applied after its settlement, so that an outbox entry of it a Redis restart brings back (its acknowledgement lost with the last writes) is acknowledged away, not applied twice; at least 10s, at most journal-retention", value: func(c *Config) any { return &c.Batch.JournalSettledRetention }, positive: true},
		{flag: "gateway-id", usage: "batch mode: this gateway's name among replicas sharing Redis, the same across restarts, unique among live gateways (default: host name)", value: func(c *Config) any { return &c.GatewayID }, fills: []string{"outbox.GatewayID"}},
		{flag: "cache-ttl-qr", usage: "batch mode: cache TTL of QR codes (0: the cache's default)", value: func(c *Config) any { return &c.Cache.QRTTL }, fills: []string{"cache.QRTTL"}},
		{flag: "cache-ttl-status", usage: "batch mode: cache TTL of statuses (0: the cache's default)", value: func(c *Config) any { return &c.Cache.StatusTTL }, fills: []string{"cache.StatusTTL"}},
		{flag: "cache-ttl-connection", usage: "batch mode: cache TTL of connection states (0: the cache's default)", value: func(c *Config) any { return &c.Cache.ConnectionTTL }, fills: []string{"cache.ConnectionTTL"}},
		{flag: "cache-ttl-session", usage: "batch mode: cache TTL of Laravel's session answers (0: the cache's default)", value: func(c *Config) any { return &c.Cache.SessionTTL }, fills: []string{"cache.SessionTTL"}},
		{flag: "cache-write-timeout", usage: "batch mode: bound of the cache write-through of one event before it is appended (0: the cache's default)", value: func(c *Config) any { return &c.Cache.WriteTimeout }, fills: []string{"cache.WriteTimeout"}},
		{flag: "send-idempotency-ttl", usage: "how long a send's answer is kept for retries with the same Idempotency-Key (batch mode: in Redis; legacy: in the process)", value: func(c *Config) any { return &c.SendIdempotencyTTL }, positive: true},
		{flag: "shutdown-timeout", usage: "deadline of a graceful shutdown on SIGTERM/SIGINT", value: func(c *Config) any { return &c.ShutdownTimeout }, positive: true},
		{flag: "log-level", usage: "log level: debug, info, warn, error", value: func(c *Config) any { return &c.LogLevel }},
		{flag: "log-format", usage: "log format: text or json", value: func(c *Config) any { return &c.LogFormat }},
		{flag: "rate-limit", usage: "authenticated API requests per second allowed per client address (0: the API's default)", value: func(c *Config) any { return &c.RateLimit }, fills: []string{"api.RateLimit.PerSecond"}},
		{flag: "rate-limit-burst", usage: "burst of authenticated API requests per client address (0: twice rate-limit)", value: func(c *Config) any { return &c.RateLimitBurst }, fills: []string{"api.RateLimit.Burst"}},
		{flag: "trusted-proxies", usage: "comma-separated IPs or CIDRs of proxies whose X-Forwarded-For names the client (rate limit); empty: none", value: func(c *Config) any { return &c.TrustedProxies }},
		{flag: "pprof-addr", usage: "serve Go profiles (net/http/pprof) on this loopback host:port; empty: off", value: func(c *Config) any { return &c.PprofAddr }},
		{flag: "steady-sysmon", usage: "keep the Go runtime's system monitor ticking every 10 ms instead of sleeping until the next timer and waking at every system call of an idle process (about a third of an idle gateway's CPU with thousands of sessions): the gateway starts itself again once, in its own process, with GODEBUG=schedtrace=2147483647 added unless GODEBUG names schedtrace", value: func(c *Config) any { return &c.SteadySysmon }},
		{flag: "wa-debug", usage: "also log whatsmeow's info and debug lines", value: func(c *Config) any { return &c.WADebug }},
		{flag: "wa-dial", usage: "TEST ONLY: host:port of a fake WhatsApp server (needs WAGATE_WA_INSECURE_TEST=1)", value: func(c *Config) any { return &c.WADial }},
		{flag: "wa-root-pubkey", usage: "TEST ONLY: hex root public key of the fake WhatsApp server (needs WAGATE_WA_INSECURE_TEST=1)", value: func(c *Config) any { return &c.WARootPubKey }},
		{flag: "wa-insecure-test", usage: "TEST ONLY: allow wa-dial and wa-root-pubkey (the gateway then does not talk to WhatsApp)", value: func(c *Config) any { return &c.WAInsecureTest }},
		{flag: "wa-test-keepalive", usage: "TEST ONLY: whatsmeow's keepalive interval (0: whatsmeow's own 20-30 s, dead after 3 min); pings every interval to 1.5 intervals, a connection dead after 9 intervals unanswered, so a silent fake WhatsApp is noticed in seconds (needs WAGATE_WA_INSECURE_TEST=1)", value: func(c *Config) any { return &c.WATestKeepalive }},
	}
}

// ConfigFileEnv names the environment variable that can point at the YAML file (like -config).
const ConfigFileEnv = "WAGATE_CONFIG"

// ErrHelp is returned by Load when -help was asked for; the usage has been written to
// Options.Stdout.
var ErrHelp = flag.ErrHelp

// Options are Load's inputs, so tests need not touch the process environment.
type Options struct {
	// Args are the command-line arguments without the program name.
	Args []string
	// Getenv reads the environment (os.LookupEnv by default).
	Getenv func(string) (string, bool)
	// Environ lists the environment as KEY=value pairs, to find WAGATE_* variables that are no
	// setting (os.Environ by default when Getenv is nil; none when only Getenv is given).
	Environ func() []string
	// ReadFile reads files (os.ReadFile by default).
	ReadFile func(string) ([]byte, error)
	// Stdout receives -help's usage (os.Stdout by default).
	Stdout io.Writer
	// Output receives diagnostics (os.Stderr by default); flag errors are returned, not written.
	Output io.Writer
}

// Loaded is Load's result: the configuration and whether -version was asked for.
type Loaded struct {
	Config  Config
	Version bool
}

// Load builds the configuration from defaults, the YAML file (-config or WAGATE_CONFIG), the
// environment and the flags, and validates it.
func Load(o Options) (Loaded, error) {
	if o.Getenv == nil {
		o.Getenv = os.LookupEnv
		if o.Environ == nil {
			o.Environ = os.Environ
		}
	}
	if o.Environ == nil {
		o.Environ = func() []string { return nil }
	}
	if o.ReadFile == nil {
		o.ReadFile = os.ReadFile
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Output == nil {
		o.Output = os.Stderr
	}
	cfg := Default()
	all := settings()

	// Flags: plain flags for non-secrets, -NAME-file for secrets; values are applied last.
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // -help is written to Stdout below; errors are returned
	configPath := fs.String("config", "", "YAML configuration file (env "+ConfigFileEnv+")")
	version := fs.Bool("version", false, "print the version and exit")
	flagVals := map[string]*string{}
	for _, s := range all {
		v := new(string)
		if s.secret {
			fs.Var(stringFlag{v}, s.flag+"-file", "")
			flagVals[s.flag+"-file"] = v
		} else if _, isBool := s.value(&cfg).(*bool); isBool {
			fs.Var(boolFlag{stringFlag{v}}, s.flag, "")
			flagVals[s.flag] = v
		} else {
			fs.Var(stringFlag{v}, s.flag, "")
			flagVals[s.flag] = v
		}
	}
	fs.Usage = func() {}
	if err := fs.Parse(o.Args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			writeUsage(o.Stdout, all)
			return Loaded{}, ErrHelp
		}
		return Loaded{}, fmt.Errorf("config: %w (gateway -help lists every flag)", err)
	}
	if fs.NArg() > 0 {
		return Loaded{}, fmt.Errorf("config: unexpected argument %q", fs.Arg(0))
	}
	if *version {
		return Loaded{Version: true}, nil
	}
	setFlags := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { setFlags[f.Name] = true })

	// YAML file. fromFile holds the settings it gave (by YAML key) that the environment and the
	// flags leave alone: Validate names them by their key in the file.
	fromFile := map[string]string{}
	path := *configPath
	if path == "" {
		path, _ = o.Getenv(ConfigFileEnv)
	}
	if path != "" {
		data, err := o.ReadFile(path)
		if err != nil {
			return Loaded{}, fmt.Errorf("config: read %s: %w", path, err)
		}
		keys, err := applyYAML(&cfg, data)
		if err != nil {
			return Loaded{}, fmt.Errorf("config: %s: %w", path, err)
		}
		for _, k := range keys {
			fromFile[k] = path
		}
	}

	// Environment, then flags. A WAGATE_* variable that is no setting is a mistake (a typo, a
	// renamed setting): it stops the start instead of being ignored.
	if err := checkUnknownEnv(o.Environ(), all); err != nil {
		return Loaded{}, err
	}
	for _, s := range all {
		env := s.envName()
		if v, ok := o.Getenv(env); ok {
			delete(fromFile, s.yamlName())
			if err := set(s.value(&cfg), v); err != nil {
				return Loaded{}, fmt.Errorf("config: %s: %w", env, err)
			}
		}
		if s.secret {
			if p, ok := o.Getenv(env + "_FILE"); ok && p != "" {
				delete(fromFile, s.yamlName())
				if err := setFromFile(s.value(&cfg), p, o.ReadFile); err != nil {
					return Loaded{}, fmt.Errorf("config: %s_FILE: %w", env, err)
				}
			}
		}
	}
	for _, s := range all {
		name := s.flag
		if s.secret {
			name += "-file"
		}
		if !setFlags[name] {
			continue
		}
		delete(fromFile, s.yamlName())
		var err error
		if s.secret {
			err = setFromFile(s.value(&cfg), *flagVals[name], o.ReadFile)
		} else {
			err = set(s.value(&cfg), *flagVals[name])
		}
		if err != nil {
			return Loaded{}, fmt.Errorf("config: -%s: %w", name, err)
		}
	}
	err := cfg.validate(func(s setting) string {
		if path, ok := fromFile[s.yamlName()]; ok {
			return s.yamlName() + " in " + path
		}
		return s.envName()
	})
	if err != nil {
		return Loaded{}, err
	}
	return Loaded{Config: cfg}, nil
}

// Validate checks every value and the combinations. Its errors name the setting by its
// environment variable, found in the settings table from the field: the gateway's own rules
// (positive values, URLs, addresses, modes and the combinations) are written here, each
// component's rules (negative values, upper bounds) are its Validate's, reported under the setting
// that fills them. A setting is refused once, by its first failing rule, in the table's order.
func (c Config) Validate() error { return c.validate(setting.envName) }

// ValidateFile is Validate for a configuration written as a YAML file (the gateway's -config
// file, a scenario's gateway block): its errors name each setting by its YAML key.
func (c Config) ValidateFile() error { return c.validate(setting.yamlName) }

// validate is Validate naming each setting by name(s).
func (c Config) validate(name func(setting) string) error {
	all := settings()
	refusals := make([]string, len(all))
	row := func(field any) int {
		for i, s := range all {
			if s.value(&c) == field {
				return i
			}
		}
		panic(fmt.Sprintf("config: %T is no setting's field", field))
	}
	named := func(field any) string { return name(all[row(field)]) }
	// orFile is the hint at a secret's _FILE variable, for a setting named by its variable.
	orFile := func(field any) string {
		if s := all[row(field)]; s.secret && name(s) == s.envName() {
			return " (or " + s.envName() + "_FILE)"
		}
		return ""
	}
	// on is how a boolean setting is switched on where it is named.
	on := func(field any) string {
		if s := all[row(field)]; name(s) != s.envName() {
			return s.yamlName() + ": true"
		}
		return named(field) + "=1"
	}
	refuseAs := func(name string, field any, format string, args ...any) {
		if i := row(field); refusals[i] == "" {
			refusals[i] = name + ": " + fmt.Sprintf(format, args...)
		}
	}
	refuse := func(field any, format string, args ...any) { refuseAs(named(field), field, format, args...) }

	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		refuse(&c.Addr, "%q is not host:port", c.Addr)
	}
	switch {
	case c.APIToken == "":
		refuse(&c.APIToken, "required%s", orFile(&c.APIToken))
	case len(c.APIToken) < 16:
		refuse(&c.APIToken, "must be at least 16 characters")
	}
	if c.LaravelToken == "" {
		refuse(&c.LaravelToken, "required%s: the bearer token Laravel expects from the gateway", orFile(&c.LaravelToken))
	}
	if u, err := url.Parse(c.LaravelURL); c.LaravelURL == "" {
		refuse(&c.LaravelURL, "required")
	} else if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		refuse(&c.LaravelURL, "%q must be an absolute http(s) URL", laravel.RedactURL(c.LaravelURL))
	}
	if c.Mode != ModeLegacy && c.Mode != ModeBatch {
		refuse(&c.Mode, "%q must be legacy or batch", c.Mode)
	}
	if c.RedisURL != "" {
		if u, err := url.Parse(c.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix") {
			refuse(&c.RedisURL, "must be a redis://, rediss:// or unix:// URL")
		}
	}
	if c.RedisStartTimeout < 0 {
		refuse(&c.RedisStartTimeout, "must not be negative (0 pings Redis once at start)")
	}
	switch {
	case c.RedisURL != "" && c.RedisEmbedded:
		refuse(&c.RedisEmbedded, "set together with %s: choose one", named(&c.RedisURL))
	case c.Mode == ModeBatch && c.RedisURL == "" && !c.RedisEmbedded:
		refuse(&c.RedisURL, "required in batch mode%s; %s runs an in-memory Redis without persistence, for tests and benchmarks only",
			orFile(&c.RedisURL), on(&c.RedisEmbedded))
	}
	if c.DataDir == "" && c.StoreDSN == "" {
		refuse(&c.DataDir, "required when %s is empty", named(&c.StoreDSN))
	}
	if c.Cluster {
		switch {
		case c.Mode != ModeBatch:
			refuse(&c.Cluster, "needs %s=%s (the replicas share the outbox and the cache in Redis)", named(&c.Mode), ModeBatch)
		case c.RedisEmbedded || c.RedisURL == "":
			refuse(&c.Cluster, "needs a shared Redis (%s), not the embedded one: the replicas coordinate in it", named(&c.RedisURL))
		case storage.DialectOf(c.StoreDSN) != storage.Postgres:
			refuse(&c.Cluster, "needs a Postgres store (%s=postgres://...): SQLite is one process's file", named(&c.StoreDSN))
		}
		if c.AdvertiseURL == "" {
			refuse(&c.AdvertiseURL, "required in cluster mode: the base URL the other replicas forward requests to")
		}
	}
	if c.AdvertiseURL != "" {
		if u, err := url.Parse(c.AdvertiseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			refuse(&c.AdvertiseURL, "%q must be an absolute http(s) URL", c.AdvertiseURL)
		}
	}
	if c.ClusterShards > cluster.MaxShards {
		refuse(&c.ClusterShards, "must be at most %d (%d)", cluster.MaxShards, c.ClusterShards)
	}
	if c.ClusterHandoverRate > cluster.MaxShards {
		refuse(&c.ClusterHandoverRate, "must be at most %d (%d)", cluster.MaxShards, c.ClusterHandoverRate)
	}
	if c.ClusterRestartGrace < 0 || c.ClusterRestartGrace > cluster.MaxRestartGrace {
		refuse(&c.ClusterRestartGrace, "must be between 0 and %s (%s)", cluster.MaxRestartGrace, c.ClusterRestartGrace)
	}
	if r := c.Batch.JournalSettledRetention; r > 0 && (r < storage.MinJournalSettledRetention || r > c.Batch.JournalRetention) {
		refuse(&c.Batch.JournalSettledRetention, "must be between %s and %s (%s)", storage.MinJournalSettledRetention, named(&c.Batch.JournalRetention), r)
	}
	if c.ClusterLeaseTTL > 0 && c.ClusterLeaseTTL < cluster.MinLeaseTTL {
		refuse(&c.ClusterLeaseTTL, "must be at least %s (%s)", cluster.MinLeaseTTL, c.ClusterLeaseTTL)
	}
	for _, s := range all {
		if v := s.value(&c); s.positive && !isPositive(v) {
			refuse(v, "must be positive")
		}
	}
	if _, err := c.TrustedProxyPrefixes(); err != nil {
		refuse(&c.TrustedProxies, "%v", err)
	}
	if c.PprofAddr != "" {
		if host, _, err := net.SplitHostPort(c.PprofAddr); err != nil {
			refuse(&c.PprofAddr, "%q is not host:port", c.PprofAddr)
		} else if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			refuse(&c.PprofAddr, "%q must be a loopback address (127.0.0.1, ::1 or localhost): profiles expose internals", c.PprofAddr)
		}
	}
	if _, err := c.SlogLevel(); err != nil {
		refuse(&c.LogLevel, "%q must be debug, info, warn or error", c.LogLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		refuse(&c.LogFormat, "%q must be text or json", c.LogFormat)
	}
	dialSettings := named(&c.WADial) + "/" + named(&c.WARootPubKey)
	if (c.WADial != "" || c.WARootPubKey != "") && !c.WAInsecureTest {
		refuseAs(dialSettings, &c.WADial, "test-only settings are refused without %s", on(&c.WAInsecureTest))
	}
	if c.WATestKeepalive != 0 {
		if !c.WAInsecureTest {
			refuse(&c.WATestKeepalive, "a test-only setting, refused without %s", on(&c.WAInsecureTest))
		} else if c.WATestKeepalive < whatsapp.MinTestKeepalive || c.WATestKeepalive > whatsapp.MaxTestKeepalive {
			refuse(&c.WATestKeepalive, "must be 0 or between %s and %s (%s)", whatsapp.MinTestKeepalive, whatsapp.MaxTestKeepalive, c.WATestKeepalive)
		}
	}
	if c.WAInsecureTest {
		if c.WADial == "" || c.WARootPubKey == "" {
			refuse(&c.WAInsecureTest, "needs both %s and %s", named(&c.WADial), named(&c.WARootPubKey))
		} else if _, err := c.WhatsAppDial(); err != nil {
			refuseAs(dialSettings, &c.WADial, "%v", err)
		}
	}

	// The components' rules, under the name of the setting that fills them.
	filledBy := map[string]int{}
	for i, s := range all {
		for _, f := range s.fills {
			filledBy[f] = i
		}
	}
	var unnamed []error
	for _, err := range c.componentErrors() {
		refused, rest := configcheck.Errors(err)
		unnamed = append(unnamed, rest...)
		for _, e := range refused {
			i, ok := filledBy[e.Component+"."+e.Setting]
			if !ok {
				unnamed = append(unnamed, e)
				continue
			}
			if refusals[i] == "" {
				refusals[i] = name(all[i]) + ": " + e.Rule()
			}
		}
	}

	var errs []error
	for _, r := range refusals {
		if r != "" {
			errs = append(errs, errors.New(r))
		}
	}
	return errors.Join(append(errs, unnamed...)...)
}

// isPositive reports whether the int or duration field p points to is above zero.
func isPositive(p any) bool {
	switch v := p.(type) {
	case *int:
		return *v > 0
	case *time.Duration:
		return *v > 0
	}
	panic(fmt.Sprintf("config: a positive setting of type %T", p))
}

// WhatsAppDial returns the test-only dial settings, nil when the gateway talks to WhatsApp.
func (c Config) WhatsAppDial() (*wadial.Config, error) {
	if !c.WAInsecureTest {
		return nil, nil
	}
	key, err := wadial.ParseRootKeyHex(c.WARootPubKey)
	if err != nil {
		return nil, err
	}
	d := &wadial.Config{Addr: c.WADial, RootPubKey: key}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return d, nil
}

// TrustedProxyPrefixes parses TrustedProxies: comma-separated IP addresses (one host) or CIDR
// prefixes.
func (c Config) TrustedProxyPrefixes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(c.TrustedProxies, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if strings.Contains(part, "/") {
			p, err := netip.ParsePrefix(part)
			if err != nil {
				return nil, fmt.Errorf("%q is not an IP address or CIDR prefix", part)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(part)
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP address or CIDR prefix", part)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// laravelUpEnv are the variables of `make laravel-up` (laravel/scripts/up.sh) and of the env file it
// writes, which the README has a shell export (`set -a; . /tmp/wagate-laravel/env`): another wagate
// tool's settings, not mistakes, so the gateway ignores them instead of refusing to start.
var laravelUpEnv = []string{
	"WAGATE_LARAVEL_DIR", "WAGATE_LARAVEL_PORT", "WAGATE_LARAVEL_WORKERS", "WAGATE_LARAVEL_BACKLOG",
	"WAGATE_LARAVEL_PROXY_TIMEOUT", "WAGATE_LARAVEL_PROXY_TIMEOUT_MS", "WAGATE_LARAVEL_DB", "WAGATE_LARAVEL_VERSION",
	"WAGATE_LARAVEL_TOKEN_PREVIOUS", "WAGATE_LARAVEL_SECRET_PREVIOUS", "WAGATE_LARAVEL_REQUIRE_SIGNATURE_V2",
	"WAGATE_LARAVEL_CREATE_UNKNOWN_SESSIONS",
}

// checkUnknownEnv refuses WAGATE_* variables in environ that no setting reads (other than
// laravelUpEnv), naming the nearest known variable.
func checkUnknownEnv(environ []string, all []setting) error {
	known := []string{ConfigFileEnv}
	for _, s := range all {
		known = append(known, s.envName())
		if s.secret {
			known = append(known, s.envName()+"_FILE")
		}
	}
	var errs []error
	seen := map[string]bool{}
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "WAGATE_") || slices.Contains(known, name) || slices.Contains(laravelUpEnv, name) || seen[name] {
			continue
		}
		seen[name] = true
		errs = append(errs, fmt.Errorf("%s: not a gateway setting; did you mean %s? (gateway -help lists every setting)", name, nearest(name, known)))
	}
	if len(errs) > 0 {
		return fmt.Errorf("config: %w", errors.Join(errs...))
	}
	return nil
}

// nearest returns the candidate name most likely meant, comparing names without case, _ and -
// (batch_size is batchSize): the shortest candidate that contains name (ttl: cacheTtlQr), else
// the one with the smallest edit distance; on ties, the one sharing the longest prefix with it
// (WAGATE_REDIS: WAGATE_REDIS_URL, not WAGATE_ADDR).
func nearest(name string, candidates []string) string {
	norm := func(s string) string {
		return strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(s))
	}
	n := norm(name)
	if len(n) >= 3 {
		contains := ""
		for _, c := range candidates {
			if nc := norm(c); strings.Contains(nc, n) && (contains == "" || len(nc) < len(norm(contains))) {
				contains = c
			}
		}
		if contains != "" {
			return contains
		}
	}
	best, bestDist, bestPrefix := "", -1, 0
	for _, c := range candidates {
		d, p := editDistance(n, norm(c)), commonPrefix(name, c)
		if bestDist < 0 || d < bestDist || (d == bestDist && p > bestPrefix) {
			best, bestDist, bestPrefix = c, d, p
		}
	}
	return best
}

func commonPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// editDistance is the Levenshtein distance between a and b (bytes: the names are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// SlogLevel parses LogLevel.
func (c Config) SlogLevel() (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(c.LogLevel))
	return l, err
}

// LogValue renders the configuration for logs with every secret replaced by "set" or "unset".
func (c Config) LogValue() slog.Value {
	var attrs []slog.Attr
	for _, s := range settings() {
		v := s.value(&c)
		var shown string
		if s.secret {
			shown = "unset"
			if p := v.(*string); *p != "" {
				shown = "set"
			}
		} else {
			shown = render(v)
		}
		if s.flag == "laravel-url" {
			shown = laravel.RedactURL(shown) // user info or a query may carry credentials
		}
		attrs = append(attrs, slog.String(s.yamlName(), shown))
	}
	return slog.GroupValue(attrs...)
}

func render(v any) string {
	switch p := v.(type) {
	case *string:
		return *p
	case *int:
		return strconv.Itoa(*p)
	case *bool:
		return strconv.FormatBool(*p)
	case *time.Duration:
		return p.String()
	}
	return fmt.Sprint(v)
}

func set(ptr any, raw string) error {
	raw = strings.TrimSpace(raw)
	switch p := ptr.(type) {
	case *string:
		*p = raw
	case *int:
		n, err := strconv.Atoi(raw)
		if err != nil {
			return fmt.Errorf("%q is not an integer", raw)
		}
		*p = n
	case *bool:
		if raw == "" {
			*p = false
			return nil
		}
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("%q is not a boolean (1, 0, true, false)", raw)
		}
		*p = b
	case *time.Duration:
		d, err := time.ParseDuration(raw)
		if err != nil {
			return fmt.Errorf("%q is not a duration (e.g. 500ms, 5s, 2m)", raw)
		}
		*p = d
	default:
		return fmt.Errorf("unsupported setting type %T", ptr)
	}
	return nil
}

func setFromFile(ptr any, path string, read func(string) ([]byte, error)) error {
	data, err := read(path)
	if err != nil {
		return fmt.Errorf("read secret file: %w", err)
	}
	p, ok := ptr.(*string)
	if !ok {
		return fmt.Errorf("not a string setting")
	}
	*p = strings.TrimRight(string(data), "\r\n")
	return nil
}

type stringFlag struct{ p *string }

// String implements flag.Value.
func (f stringFlag) String() string {
	if f.p == nil {
		return ""
	}
	return *f.p
}

// Set implements flag.Value; the value is applied after the file and the environment.
func (f stringFlag) Set(v string) error { *f.p = v; return nil }

// boolFlag lets "-wa-insecure-test" and "-wa-debug" stand alone (meaning true).
type boolFlag struct{ stringFlag }

// IsBoolFlag makes the flag valid without a value.
func (boolFlag) IsBoolFlag() bool { return true }

func writeUsage(w io.Writer, all []setting) {
	def := Default()
	fmt.Fprintf(w, `Usage: gateway [flags]

wagate gateway: WhatsApp sessions on whatsmeow, reported to a Laravel application.
Settings come from defaults < YAML file (-config FILE or %s; keys are the flag names in
camelCase: batch-interval is batchInterval) < environment variables < flags. Secrets are read from the environment or from files
(ENV_FILE variables, -NAME-file flags), never from plain flags.

  -config FILE   YAML configuration file
  -version       print the version and exit
  -help          this text

Exit codes: 0 stopped cleanly (SIGTERM/SIGINT) or -help/-version, 1 failed to start or stopped
with errors, 2 invalid configuration (the message names the setting).

`, ConfigFileEnv)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  flag\tenvironment\tdefault\tmeaning")
	for _, s := range all {
		name, env, shown := "-"+s.flag, s.envName(), render(s.value(&def))
		if s.secret {
			name = "-" + s.flag + "-file FILE"
			env = env + " | " + env + "_FILE"
			shown = ""
		}
		if shown == "" {
			shown = `""`
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", name, env, shown, s.usage)
	}
	_ = tw.Flush()
}
