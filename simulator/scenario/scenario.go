// Package scenario owns the simulator's scenario files (YAML, in scenarios/): who the users are
// and how they churn (k6 scenarios with k6 executors, plus a behaviour model per user), the
// gateway and fakelaravel configuration under test, a fault schedule over time, the drain period
// and k6 thresholds. Load reads a file, applies `-set key=value` overrides, fills defaults and
// validates it; every problem names the file, the field and what is wrong.
package scenario

import (
	"fmt"
	"math"
	"time"

	"wagate/fakelaravel"
	"wagate/gateway/config"
	"wagate/simulator/executor"
	"wagate/simulator/threshold"
)

// File is one scenario file.
type File struct {
	// Name identifies the scenario in reports; defaults to the file's base name.
	Name string `yaml:"name"`
	// Description says what the scenario exercises.
	Description string `yaml:"description"`
	// Users is the number of users an executor runs when it gives no vus (or maxVUs), so
	// `-set users=1000` scales a scenario.
	Users int64 `yaml:"users"`
	// Scenarios are k6 scenarios by name: an executor drives users whose every iteration is one
	// session of one WhatsApp account (start, pair, live, end).
	Scenarios map[string]*Scenario `yaml:"scenarios"`
	// Behaviour is the default behaviour model of every scenario's users.
	Behaviour Behaviour `yaml:"behaviour"`
	// Gateway is the gateway configuration under test.
	Gateway Gateway `yaml:"gateway"`
	// Laravel is fakelaravel's configuration (capacity model, initial faults).
	Laravel Laravel `yaml:"laravel"`
	// WhatsApp is fakewa's configuration.
	WhatsApp WhatsApp `yaml:"whatsapp"`
	// CPUs puts the gateway on its own CPU set and the world (users, fakewa, fakelaravel, a
	// redis-server the simulator started) on the rest (cpus.go).
	CPUs CPUs `yaml:"cpus"`
	// Faults is the fault schedule: changes to fakelaravel and WhatsApp at given times.
	Faults []Fault `yaml:"faults"`
	// Quiet is a window in which the Laravel app polls nothing (none by default): what idle
	// connected sessions cost the gateway is measured in it.
	Quiet *Quiet `yaml:"quiet"`
	// Drain is how long the simulator waits after the users stopped before it compares Laravel's
	// state with the ground truth (default 15s). In batch mode the simulator then also waits,
	// up to 60 s more, until the gateway's outbox is empty, so late events are not counted lost.
	Drain Duration `yaml:"drain"`
	// Warmup excludes the series intervals that end before it from the mean of
	// laravel_requests_per_minute (the steady-state rate); default 0.
	Warmup Duration `yaml:"warmup"`
	// SeriesInterval is the width of one report series point (default 10s).
	SeriesInterval Duration `yaml:"seriesInterval"`
	// Thresholds are k6 thresholds: metric (with optional tag filter) -> expressions.
	Thresholds map[string]ThresholdList `yaml:"thresholds"`
	// SummaryTrendStats are the trend stats in summary.json (k6's default when empty).
	SummaryTrendStats []string `yaml:"summaryTrendStats"`
	// Seed makes the users' random choices reproducible (default 1).
	Seed uint64 `yaml:"seed"`

	// Path is the file the scenario was read from (set by Load).
	Path string `yaml:"-"`
	// Overrides are the -set pairs applied, in order (set by Load).
	Overrides []string `yaml:"-"`
	// ThresholdSets are the parsed thresholds in key order (set by Load).
	ThresholdSets []threshold.Set `yaml:"-"`
}

// Scenario is one k6 scenario: an executor with k6's option names, plus the users' behaviour.
type Scenario struct {
	Executor         string   `yaml:"executor"`
	StartTime        Duration `yaml:"startTime"`
	GracefulStop     Duration `yaml:"gracefulStop"`
	VUs              *int64   `yaml:"vus"`
	Iterations       int64    `yaml:"iterations"`
	MaxDuration      Duration `yaml:"maxDuration"`
	Duration         Duration `yaml:"duration"`
	StartVUs         *int64   `yaml:"startVUs"`
	GracefulRampDown Duration `yaml:"gracefulRampDown"`
	Stages           []Stage  `yaml:"stages"`
	Rate             int64    `yaml:"rate"`
	StartRate        int64    `yaml:"startRate"`
	TimeUnit         Duration `yaml:"timeUnit"`
	PreAllocatedVUs  *int64   `yaml:"preAllocatedVUs"`
	MaxVUs           *int64   `yaml:"maxVUs"`
	// Tags are added to every sample of this scenario's users (k6's scenario tags).
	Tags map[string]string `yaml:"tags"`
	// Behaviour overrides the file's behaviour fields that it sets.
	Behaviour *Behaviour `yaml:"behaviour"`

	// Config is the executor configuration after defaults (set by Load).
	Config executor.Config `yaml:"-"`
	// Model is the effective behaviour (set by Load).
	Model Behaviour `yaml:"-"`
	set   map[string]bool
}

// Stage is one ramping stage.
type Stage struct {
	Duration Duration `yaml:"duration"`
	Target   int64    `yaml:"target"`
}

// Behaviour is what one user (a WhatsApp account of a Laravel customer, and the Laravel app acting
// for it) does. Every field has a default (DefaultBehaviour).
type Behaviour struct {
	// StartDelay is how long a user waits before its first session (spreads the arrival of the
	// users of constant-vus over time); later sessions start at once.
	StartDelay *Dist `yaml:"startDelay"`
	// ScanDelay is the time from Laravel showing a QR code until the person scans it.
	ScanDelay *Dist `yaml:"scanDelay"`
	// ScanSuccess is the probability that a scan pairs (a failed scan waits for the next code).
	ScanSuccess *float64 `yaml:"scanSuccess"`
	// GiveUpAfter is how long a person keeps trying to pair before giving up (the session stays
	// pending or expires).
	GiveUpAfter *Duration `yaml:"giveUpAfter"`
	// SessionLifetime is how long a session stays in use once connected before the user ends it.
	SessionLifetime *Dist `yaml:"sessionLifetime"`
	// LogoutAtEnd is the probability that a session ends by logout (DELETE /sessions/{id}); otherwise
	// the user just stops using it and it stays connected.
	LogoutAtEnd *float64 `yaml:"logoutAtEnd"`
	// MessagesPerMinute is the rate of messages a connected user sends (Poisson); fakewa answers
	// each with delivery and read receipts, which reach Laravel as receipts.
	MessagesPerMinute *float64 `yaml:"messagesPerMinute"`
	// IncomingMessagesPerMinute is the rate of messages the user's customer writes to the
	// session (Poisson), from a fakewa phone: they reach Laravel as incoming messages.
	IncomingMessagesPerMinute *float64 `yaml:"incomingMessagesPerMinute"`
	// Replies is the probability that an incoming message replies to (quotes) the customer's
	// previous one.
	Replies *float64 `yaml:"replies"`
	// StatusPollInterval is the pause between two status polls (GET /sessions/{id}) of one poller.
	StatusPollInterval *Duration `yaml:"statusPollInterval"`
	// QRPollInterval is the pause between two QR polls (GET /sessions/{id}/qr) while pairing.
	QRPollInterval *Duration `yaml:"qrPollInterval"`
	// Pollers is how many independent status pollers the Laravel app runs for one user (workers,
	// open browser tabs, cron jobs); each waits for its answer, then StatusPollInterval.
	Pollers *int64 `yaml:"pollers"`
	// DropsPerHour is the rate of network drops of a connected session (fakewa drop; whatsmeow
	// reconnects by itself).
	DropsPerHour *float64 `yaml:"dropsPerHour"`
	// ReplacedPerHour is the rate of stream-replaced events (another client took the session).
	ReplacedPerHour *float64 `yaml:"replacedPerHour"`
	// RemoteLogoutsPerHour is the rate of logouts from the phone (device removed, 401).
	RemoteLogoutsPerHour *float64 `yaml:"remoteLogoutsPerHour"`
}

// DefaultBehaviour is the behaviour of a user when the file says nothing.
func DefaultBehaviour() Behaviour {
	f := func(v float64) *float64 { return &v }
	d := func(v time.Duration) *Duration { x := Duration(v); return &x }
	i := func(v int64) *int64 { return &v }
	return Behaviour{
		StartDelay:                &Dist{},
		ScanDelay:                 &Dist{Min: Duration(2 * time.Second), Max: Duration(8 * time.Second)},
		ScanSuccess:               f(1),
		GiveUpAfter:               d(3 * time.Minute),
		SessionLifetime:           &Dist{Min: Duration(time.Hour), Max: Duration(time.Hour)},
		LogoutAtEnd:               f(0),
		MessagesPerMinute:         f(0),
		IncomingMessagesPerMinute: f(0),
		Replies:                   f(0),
		StatusPollInterval:        d(5 * time.Second),
		QRPollInterval:            d(2 * time.Second),
		Pollers:                   i(1),
		DropsPerHour:              f(0),
		ReplacedPerHour:           f(0),
		RemoteLogoutsPerHour:      f(0),
	}
}

// merge returns b with every field o sets replaced.
func (b Behaviour) merge(o *Behaviour) Behaviour {
	if o == nil {
		return b
	}
	if o.StartDelay != nil {
		b.StartDelay = o.StartDelay
	}
	if o.ScanDelay != nil {
		b.ScanDelay = o.ScanDelay
	}
	if o.ScanSuccess != nil {
		b.ScanSuccess = o.ScanSuccess
	}
	if o.GiveUpAfter != nil {
		b.GiveUpAfter = o.GiveUpAfter
	}
	if o.SessionLifetime != nil {
		b.SessionLifetime = o.SessionLifetime
	}
	if o.LogoutAtEnd != nil {
		b.LogoutAtEnd = o.LogoutAtEnd
	}
	if o.MessagesPerMinute != nil {
		b.MessagesPerMinute = o.MessagesPerMinute
	}
	if o.IncomingMessagesPerMinute != nil {
		b.IncomingMessagesPerMinute = o.IncomingMessagesPerMinute
	}
	if o.Replies != nil {
		b.Replies = o.Replies
	}
	if o.StatusPollInterval != nil {
		b.StatusPollInterval = o.StatusPollInterval
	}
	if o.QRPollInterval != nil {
		b.QRPollInterval = o.QRPollInterval
	}
	if o.Pollers != nil {
		b.Pollers = o.Pollers
	}
	if o.DropsPerHour != nil {
		b.DropsPerHour = o.DropsPerHour
	}
	if o.ReplacedPerHour != nil {
		b.ReplacedPerHour = o.ReplacedPerHour
	}
	if o.RemoteLogoutsPerHour != nil {
		b.RemoteLogoutsPerHour = o.RemoteLogoutsPerHour
	}
	return b
}

func (b Behaviour) validate() error {
	prob := func(name string, v float64) error {
		if v < 0 || v > 1 || math.IsNaN(v) {
			return fmt.Errorf("%s: %v is not a probability; use a number from 0 to 1", name, v)
		}
		return nil
	}
	nonNeg := func(name string, v float64) error {
		if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%s: %v can't be negative", name, v)
		}
		return nil
	}
	for _, err := range []error{
		b.StartDelay.validate("startDelay"),
		b.ScanDelay.validate("scanDelay"),
		b.SessionLifetime.validate("sessionLifetime"),
		prob("scanSuccess", *b.ScanSuccess),
		prob("logoutAtEnd", *b.LogoutAtEnd),
		nonNeg("messagesPerMinute", *b.MessagesPerMinute),
		nonNeg("incomingMessagesPerMinute", *b.IncomingMessagesPerMinute),
		prob("replies", *b.Replies),
		nonNeg("dropsPerHour", *b.DropsPerHour),
		nonNeg("replacedPerHour", *b.ReplacedPerHour),
		nonNeg("remoteLogoutsPerHour", *b.RemoteLogoutsPerHour),
	} {
		if err != nil {
			return err
		}
	}
	if *b.StatusPollInterval < Duration(10*time.Millisecond) {
		return fmt.Errorf("statusPollInterval: %s is too short; use at least 10ms", *b.StatusPollInterval)
	}
	if *b.QRPollInterval < Duration(10*time.Millisecond) {
		return fmt.Errorf("qrPollInterval: %s is too short; use at least 10ms", *b.QRPollInterval)
	}
	if *b.Pollers < 0 || *b.Pollers > 100 {
		return fmt.Errorf("pollers: %d is out of range; use 0 to 100 pollers per user", *b.Pollers)
	}
	if *b.GiveUpAfter <= 0 {
		return fmt.Errorf("giveUpAfter: must be more than 0")
	}
	return nil
}

// Gateway is the gateway under test. Its block is the gateway's own YAML configuration file
// (gateway -config FILE: the keys of `gateway -help`'s settings table, e.g. batchInterval: 1s),
// decoded and validated by gateway/config, beside three keys of the simulator's: redis, url and
// token. A run writes the settings to gateway.yaml in its folder and starts bin/gateway with
// -config; what each run gives the gateway (PerRun: addresses, tokens, the data folder, Redis,
// the test-only WhatsApp dial) comes from the run, not the scenario.
type Gateway struct {
	// Config is the gateway's configuration: its defaults, but batch mode (what the simulator
	// measures unless the block says mode: legacy), with the block's settings applied. Its fields
	// read as the scenario's (f.Gateway.Mode).
	config.Config `yaml:"-"`
	// Set are the keys of the gateway settings the block gave (after -set), in the file's order.
	Set []string `yaml:"-"`
	// Redis is "embedded" (miniredis in the gateway, the default), "server" (a redis-server the
	// simulator starts on a free port; embedded when none is installed) or a redis:// URL.
	Redis string `yaml:"redis"`
	// URL points at an already running gateway instead of starting one (with Token).
	URL   string `yaml:"url"`
	Token string `yaml:"token"`
	// Replicas is how many gateway processes the run starts (default 1). More than one is cluster
	// mode (docs/cluster.md): the run starts a redis-server (never the embedded one) and a
	// PostgreSQL server for the shared store, gives each replica its own gateway id, port,
	// advertise URL and data folder, and puts a round-robin front before them that the users and
	// the ground truth call (any replica takes any request).
	Replicas int `yaml:"replicas"`
	// GoRuntime is the Go runtime environment of every gateway process the run starts
	// (gateway.gogc, gateway.gomemlimit, gateway.gomaxprocs); unset: Go's defaults.
	GoRuntime `yaml:",inline"`
}

// MaxReplicas bounds gateway.replicas: every replica is a real process on the gateway's CPU set.
const MaxReplicas = 8

// Cluster reports whether the run starts several replicas in cluster mode.
func (g Gateway) Cluster() bool { return g.Replicas > 1 }

// simulatorKeys are the gateway block's keys that are the simulator's, not the gateway's.
var simulatorKeys = []string{"redis", "url", "token", "replicas", "gogc", "gomemlimit", "gomaxprocs"}

// GatewayRun is what a run gives the gateway it starts besides the scenario's settings.
type GatewayRun struct {
	Addr, APIToken, LaravelURL, LaravelToken, LaravelSecret, DataDir string
	// RedisURL is the Redis the run started or the scenario named; empty: the embedded one.
	RedisURL string
	// WADial and WARootPubKey point the gateway at fakewa (test-only settings).
	WADial, WARootPubKey string
	// Cluster mode (gateway.replicas > 1): this replica's gateway id and the URL the other
	// replicas forward to, and the shared Postgres store (StoreDSN).
	GatewayID, AdvertiseURL, StoreDSN string
}

// PerRun points at the settings of c a run gives (RunConfig): the gateway receives them in its
// environment, not in its file, and a scenario cannot set them.
func PerRun(c *config.Config) []any {
	return []any{&c.Addr, &c.APIToken, &c.LaravelURL, &c.LaravelToken, &c.LaravelSecret, &c.DataDir,
		&c.RedisURL, &c.RedisEmbedded, &c.WADial, &c.WARootPubKey, &c.WAInsecureTest,
		&c.Cluster, &c.GatewayID, &c.AdvertiseURL, &c.StoreDSN}
}

// RunConfig is the configuration of the gateway a run starts: the scenario's, with what the run
// gives it.
func (g Gateway) RunConfig(r GatewayRun) config.Config {
	c := g.Config
	c.Addr, c.APIToken, c.LaravelURL, c.LaravelToken, c.LaravelSecret, c.DataDir = r.Addr, r.APIToken, r.LaravelURL, r.LaravelToken, r.LaravelSecret, r.DataDir
	c.RedisURL, c.RedisEmbedded = r.RedisURL, r.RedisURL == "" // batch mode needs the embedded one explicitly
	c.WADial, c.WARootPubKey, c.WAInsecureTest = r.WADial, r.WARootPubKey, true
	if r.AdvertiseURL != "" {
		c.Cluster, c.GatewayID, c.AdvertiseURL, c.StoreDSN = true, r.GatewayID, r.AdvertiseURL, r.StoreDSN
	}
	return c
}

// Laravel is fakelaravel's configuration: the capacity model and initial faults. The capacity
// parameters become its flags; Flags adds any other flag.
//
// With Real set, the run uses the reference Laravel app under laravel/ instead of the model: the
// simulator starts it for the run (laravel/scripts/up.sh: private php-fpm and nginx on loopback,
// a fresh SQLite database) with Workers, Backlog and ProxyTimeout as its pm.max_children,
// listen.backlog and fastcgi_read_timeout, and puts fakelaravel in front of it as a measuring
// proxy (fakelaravel.Upstream), so the report has the same Laravel figures and ground truth as
// with the fake. The model's CPU fields do not apply. It burns real CPU on the machine that also
// runs the gateway and the users: keep user counts small (tens).
type Laravel struct {
	// Capacity is fakelaravel's capacity model: the block's parameters by fakelaravel's own keys
	// (fakelaravel.CapacityFlags: cores, workers, backlog, bootstrap, perRow, jitter,
	// proxyTimeout, lookup, lockWaitShare, lockWait, lockHold) over its calibration; a run passes
	// exactly these to bin/fakelaravel (Capacity.Args).
	Capacity fakelaravel.Capacity `yaml:"-"`
	// Real runs the real Laravel app instead of fakelaravel's model.
	Real bool `yaml:"real"`
	// Faults injected from the start.
	Faults *LaravelFaults `yaml:"faults"`
	// Flags are further command-line flags of bin/fakelaravel (name without dash -> value).
	Flags map[string]string `yaml:"flags"`
	// URL points at an already running fakelaravel instead of starting one (with Token, and
	// AdminToken for /_fake/).
	URL        string `yaml:"url"`
	Token      string `yaml:"token"`
	AdminToken string `yaml:"adminToken"`
}

// LaravelFaults are fakelaravel's runtime faults: what a Laravel in production does wrong.
type LaravelFaults struct {
	// ErrorRate is the share of /api requests answered with ErrorStatus instead of being processed.
	ErrorRate float64 `yaml:"errorRate,omitempty"`
	// ErrorStatus is any non-2xx status (default 500): 5xx, 401/403/404/405/408/410/421, 429, or a
	// 3xx that sends the client to RedirectTo.
	ErrorStatus int `yaml:"errorStatus,omitempty"`
	// RetryAfter is sent with a 429 or 503 (hours are allowed: Laravel's throttle can say so).
	RetryAfter Duration `yaml:"retryAfter,omitempty"`
	// RedirectTo is the Location of a 3xx ErrorStatus: another host the client must not follow.
	RedirectTo string `yaml:"redirectTo,omitempty"`
	// ExtraLatency holds every /api request's worker this much longer.
	ExtraLatency Duration `yaml:"extraLatency,omitempty"`
	// LostResponseRate is the share of applied writes whose response is lost.
	LostResponseRate float64 `yaml:"lostResponseRate,omitempty"`
	// BadBodyRate is the share of applied batch writes answered 2xx with an undecodable body.
	BadBodyRate float64 `yaml:"badBodyRate,omitempty"`
	// UnaccountedRate is the share of batch answers that report more failed items than they name
	// in errors (the unnamed items were not applied).
	UnaccountedRate float64 `yaml:"unaccountedRate,omitempty"`
	// RefuseSessions are sessions whose items Laravel refuses item by item (a named per-item error
	// in a 2xx): the only events the gateway may dead-letter.
	RefuseSessions []string `yaml:"refuseSessions,omitempty"`
	// Down refuses connections for the fault's duration.
	Down bool `yaml:"down,omitempty"`
}

// IsRedirect reports whether status is a redirect a client would follow.
func IsRedirect(status int) bool { return status >= 300 && status < 400 }

func (f *LaravelFaults) validate() error {
	if f == nil {
		return nil
	}
	for _, p := range []struct {
		name string
		v    float64
	}{{"errorRate", f.ErrorRate}, {"lostResponseRate", f.LostResponseRate}, {"badBodyRate", f.BadBodyRate}, {"unaccountedRate", f.UnaccountedRate}} {
		if p.v < 0 || p.v > 1 || math.IsNaN(p.v) {
			return fmt.Errorf("%s: %v is not a probability; use a number from 0 to 1", p.name, p.v)
		}
	}
	switch s := f.ErrorStatus; {
	case s == 0:
	case s < 300 || s > 599:
		return fmt.Errorf("errorStatus: %d is not an error status; use a 3xx, 4xx or 5xx", s)
	case IsRedirect(s) && f.RedirectTo == "":
		return fmt.Errorf("errorStatus: %d is a redirect; give redirectTo, the URL it sends the client to", s)
	}
	if f.RedirectTo != "" && !IsRedirect(f.ErrorStatus) {
		return fmt.Errorf("redirectTo: only with a 3xx errorStatus")
	}
	if f.RetryAfter < 0 || f.ExtraLatency < 0 {
		return fmt.Errorf("retryAfter and extraLatency can't be negative")
	}
	for _, id := range f.RefuseSessions {
		if id == "" {
			return fmt.Errorf("refuseSessions: a session id can't be empty")
		}
	}
	return nil
}

// WhatsApp is fakewa's configuration.
type WhatsApp struct {
	// Listen and Control point at an already running fakewa (bin/simulator fakewa) instead of
	// starting one in-process; RootKey is its root public key in hex.
	Listen  string `yaml:"listen"`
	Control string `yaml:"control"`
	RootKey string `yaml:"rootKey"`
	// Process runs fakewa as a child process (bin/simulator fakewa, on the world's CPUs, with its
	// own Go scheduler) instead of in the simulator's: its devices' work then no longer queues
	// with the pollers' goroutines, whose delays count as the gateway's latency. Ignored when
	// Control points at a running fakewa.
	Process bool `yaml:"process"`
}

// Fault is one entry of the fault schedule: at At (since the start of the users), for Duration
// (0: until changed again), apply Laravel faults or a WhatsApp event.
type Fault struct {
	// Name labels the fault in reports.
	Name     string   `yaml:"name,omitempty"`
	At       Duration `yaml:"at,omitempty"`
	Duration Duration `yaml:"duration,omitempty"`
	// Laravel replaces fakelaravel's faults for the duration (then restores the initial ones).
	Laravel *LaravelFaults `yaml:"laravel,omitempty"`
	// WhatsApp makes fakewa act on a share of the connected sessions.
	WhatsApp *WhatsAppFault `yaml:"whatsapp,omitempty"`
	// Process kills or restarts the gateway or redis-server (see ProcessFault).
	Process *ProcessFault `yaml:"process,omitempty"`
}

// Quiet is a window, counted from the users' start like a fault's, in which every status and QR
// poll of the native users (their pollers' think times go on; a poll due in the window is
// skipped) is left out, so the gateway serves no API request: the report's idle figures
// (CPU of connected sessions with no polling) read the series intervals that had none. Starts,
// logouts and messages are not held back.
type Quiet struct {
	At       Duration `yaml:"at"`
	Duration Duration `yaml:"duration"`
}

// Covers reports whether t, the time since the users' start, falls in the window.
func (q *Quiet) Covers(t time.Duration) bool {
	return q != nil && t >= q.At.Std() && t < q.At.Std()+q.Duration.Std()
}

// WhatsAppFault is a mass event on connected devices.
type WhatsAppFault struct {
	// Action is "drop", "replace", "logout", "restart" (the whole server), "down" (WhatsApp
	// unreachable for the fault's duration: the share's devices, or with share 1 every
	// connection, dropped, and new connections refused until the duration ends) or "silent"
	// (WhatsApp answers nothing for the fault's duration but closes nothing: the share's devices'
	// connections, or with share 1 every connection and new dial, neither read nor answered; the
	// gateway notices only through whatsmeow's keepalive, which its test-only waTestKeepalive
	// setting shortens) or "handshake-cut" (for the fault's duration every new connection is
	// accepted and closed mid-handshake, before the server's hello, and the share's connections
	// are dropped at its start so that their reconnects meet it).
	Action string `yaml:"action"`
	// Share is the fraction of connected sessions affected (default 1).
	Share *float64 `yaml:"share,omitempty"`
	// Spread spreads the actions evenly over this time instead of all at once.
	Spread Duration `yaml:"spread,omitempty"`
}

// ThresholdList is a key's thresholds: strings or k6 objects.
type ThresholdList []threshold.Definition

// PeakUsers is the most users the file's executors run at once (whole test, all scenarios).
func (f *File) PeakUsers() int64 {
	var n int64
	for _, s := range f.Scenarios {
		n += s.Config.MaxVUsOf(nil)
	}
	return n
}

// Duration of the users' part: the longest scenario's start + scheduled duration + graceful stop.
func (f *File) TestDuration() time.Duration {
	var d time.Duration
	for _, s := range f.Scenarios {
		d = max(d, s.Config.TotalDuration())
	}
	return d
}

// ScheduledDuration is the longest scenario's start + scheduled duration (without graceful stops).
func (f *File) ScheduledDuration() time.Duration {
	var d time.Duration
	for _, s := range f.Scenarios {
		d = max(d, s.Config.StartTime+s.Config.ScheduledDuration())
	}
	return d
}
