// Command fakelaravel runs the Laravel stand-in of wagate (package wagate/fakelaravel): the
// Laravel contract on SQLite behind a PHP-FPM capacity model, with faults and observation under
// /_fake/ and Prometheus metrics under /metrics.
//
//	fakelaravel -addr 127.0.0.1:8000 -token T [-secret S] [-db FILE] [knobs...]
//	fakelaravel conform -url URL -token T [-secret S]
//
// Secrets come from flags, files (-token-file, -secret-file, -admin-token-file) or the
// environment (FAKELARAVEL_TOKEN, FAKELARAVEL_SECRET, FAKELARAVEL_ADMIN_TOKEN); they are never
// logged. SIGTERM or SIGINT shut the server down gracefully.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"wagate/fakelaravel"
	"wagate/fakelaravel/conform"
	"wagate/gateway/laravel"
	"wagate/internal/buildinfo"
	"wagate/internal/cli"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "conform" {
		os.Exit(runConform(os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(runServer(os.Args[1:], os.Stdout, os.Stderr))
}

// secret resolves a secret from its flag, then its file flag, then the environment.
func secret(flagValue, file, env string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read secret file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return os.Getenv(env), nil
}

func runServer(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fakelaravel", flag.ContinueOnError)
	usage := cli.Defaults(fs, "usage: fakelaravel [flags]          serve the Laravel contract\n"+
		"       fakelaravel conform -help    check a Laravel app against the contract\n\n"+
		"Exit codes: 0 stopped by SIGTERM/SIGINT (or -help, -version), 1 failed, 2 bad command line.\n\nflags:\n")
	cal := fakelaravel.DefaultCalibration()
	flagValues := cal.Model.CapacityModel() // the capacity flags' defaults, set by the flags given
	for _, f := range fakelaravel.CapacityFlags() {
		f.Register(fs, &flagValues)
	}
	var (
		version     = fs.Bool("version", false, "print the version and exit")
		addr        = fs.String("addr", "127.0.0.1:8000", "listen address")
		token       = fs.String("token", "", "bearer token of /api (or -token-file, or $FAKELARAVEL_TOKEN)")
		tokenFile   = fs.String("token-file", "", "file holding the bearer token")
		adminTok    = fs.String("admin-token", "", "bearer token of /_fake/ (or -admin-token-file, $FAKELARAVEL_ADMIN_TOKEN; default: the /api token)")
		adminFile   = fs.String("admin-token-file", "", "file holding the admin token")
		secretFlag  = fs.String("secret", "", "HMAC secret; when set every POST must be signed (or -secret-file, or $FAKELARAVEL_SECRET)")
		secretFile  = fs.String("secret-file", "", "file holding the HMAC secret")
		skew        = fs.Duration("signature-skew", laravel.DefaultSignatureSkew, "largest accepted distance between a signature's timestamp and now")
		requireV2   = fs.Bool("require-signature-v2", false, "refuse POSTs without a v2 signature (X-Wagate-Signature-V2); default: v1 is accepted too (migration, docs/security.md)")
		db          = fs.String("db", "", "SQLite file (default: a temporary file removed on exit)")
		calFile     = fs.String("calibration", "", "calibration.json to take the capacity defaults from (default: the embedded one: "+cal.Source+")")
		maxItems    = fs.Int("max-items", laravel.MaxBatchItems, "largest batch accepted (422 above)")
		maxBody     = fs.Int64("max-body", laravel.MaxBodyBytes, "largest body in bytes (413 above)")
		rejectUnk   = fs.Bool("reject-unknown-sessions", false, "fail writes for sessions that do not exist instead of creating them")
		errRate     = fs.Float64("error-rate", 0, "fault: probability of answering -error-status instead of processing")
		errStatus   = fs.Int("error-status", 500, "fault: status of injected errors: any of 300-599 (a 3xx points to another host)")
		retryAfter  = fs.Int("retry-after", 1, "fault: Retry-After seconds sent with injected 429/503")
		extraLat    = fs.Duration("extra-latency", 0, "fault: wall time every /api request holds its worker for")
		lostRate    = fs.Float64("lost-response-rate", 0, "fault: probability that an applied write loses its response")
		lostMode    = fs.String("lost-response-mode", fakelaravel.LostResponseClose, "fault: how a response is lost: close (drop the connection) or empty (200 without body)")
		down        = fs.String("down", "", "fault: down windows START+DURATION[,...] after start, e.g. 30s+5s,2m+10s (connections refused)")
		faultWins   = fs.String("fault-windows", "", "fault: timed faults KIND[@START+DURATION][,KEY=VALUE...][;...] after start, e.g. 'status@10s+30s,rate=0.5,status=503,retry_after=2h;refuse_items,rate=1,sessions=s1|s2' (kinds: status, latency, down, lost_response, garbage_body, unaccounted_failures, refuse_items; see go doc wagate/fakelaravel.ParseFaultWindows)")
		series      = fs.Int("series-seconds", fakelaravel.DefaultSeriesSeconds, "seconds of per-second series kept in /_fake/stats")
		seed        = fs.Uint64("seed", 1, "seed of the jitter and fault draws")
		logLevel    = fs.String("log-level", "info", "debug, info, warn or error")
		upURL       = fs.String("upstream", "", "measure a real Laravel app instead of being one: forward /api to this URL (e.g. http://127.0.0.1:8089, see make laravel-up); needs -upstream-db; the capacity flags, -token and -secret then do not apply")
		upDB        = fs.String("upstream-db", "", "the real app's SQLite database, read-only ground truth of /_fake/state")
		upWorkers   = fs.Int("upstream-workers", 0, "the real app's PHP-FPM workers, reported in /_fake/stats (0 = unknown)")
		upTimeout   = fs.Duration("upstream-timeout", fakelaravel.DefaultUpstreamTimeout, "longest wait for the real app's answer (504 after)")
		capSetFlags = map[string]bool{}
	)
	if code, done := cli.Parse(fs, args, stdout, stderr, usage); done {
		return code
	}
	if *version {
		fmt.Fprintln(stdout, buildinfo.String("fakelaravel"))
		return 0
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "fakelaravel: -log-level: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	fs.Visit(func(f *flag.Flag) { capSetFlags[f.Name] = true })
	model := flagModel(flagValues, capSetFlags)
	if *calFile != "" {
		data, err := os.ReadFile(*calFile)
		if err != nil {
			log.Error("read calibration", "err", err)
			return 2
		}
		c, err := fakelaravel.ParseCalibration(data)
		if err != nil {
			log.Error("parse calibration", "err", err)
			return 2
		}
		model = mergeModel(c.Model.CapacityModel(), model, capSetFlags)
	}
	if err := model.Validate(); err != nil {
		log.Error("capacity flags", "err", err)
		return 2
	}
	tok, err := secret(*token, *tokenFile, "FAKELARAVEL_TOKEN")
	if err != nil {
		log.Error("token", "err", err)
		return 2
	}
	adm, err := secret(*adminTok, *adminFile, "FAKELARAVEL_ADMIN_TOKEN")
	if err != nil {
		log.Error("admin token", "err", err)
		return 2
	}
	if tok == "" && (*upURL == "" || adm == "") {
		log.Error("a token is required: -token, -token-file or $FAKELARAVEL_TOKEN (with -upstream, an admin token is enough)")
		return 2
	}
	if (*upURL == "") != (*upDB == "") {
		log.Error("-upstream and -upstream-db go together: the real app's URL and its database")
		return 2
	}
	sec, err := secret(*secretFlag, *secretFile, "FAKELARAVEL_SECRET")
	if err != nil {
		log.Error("secret", "err", err)
		return 2
	}
	windows, err := fakelaravel.ParseDownWindows(*down)
	if err != nil {
		log.Error("-down", "err", err)
		return 2
	}
	faultWindows, err := fakelaravel.ParseFaultWindows(*faultWins)
	if err != nil {
		log.Error("-fault-windows", "err", err)
		return 2
	}
	cfg := fakelaravel.Config{
		Token: tok, AdminToken: adm, SignatureSkew: *skew, RequireSignatureV2: *requireV2, DBPath: *db, Capacity: model,
		MaxItems: *maxItems, MaxBodyBytes: *maxBody, RejectUnknownSessions: *rejectUnk,
		SeriesSeconds: *series, Seed: *seed, Logger: log,
		Faults: fakelaravel.Faults{ErrorRate: *errRate, ErrorStatus: *errStatus, RetryAfterS: *retryAfter,
			ExtraLatencyMS: extraLat.Milliseconds(), LostResponseRate: *lostRate, LostResponseMode: *lostMode, DownWindows: windows,
			Windows: faultWindows},
	}
	if sec != "" {
		cfg.Secret = []byte(sec)
	}
	if *upURL != "" {
		cfg.Upstream = &fakelaravel.Upstream{URL: *upURL, DBPath: *upDB, Workers: *upWorkers, Timeout: *upTimeout}
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	srv, err := fakelaravel.New(ctx, cfg)
	if err != nil {
		log.Error("start", "err", err)
		return 1
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Error("listen", "addr", *addr, "err", err)
		return 1
	}
	if cfg.Upstream != nil {
		log.Info("fakelaravel listening in front of a real Laravel app", "addr", ln.Addr().String(), "upstream", cfg.Upstream.URL,
			"db", srv.DBPath(), "workers", cfg.Upstream.Workers, "version", buildinfo.Version)
	} else {
		log.Info("fakelaravel listening", "addr", ln.Addr().String(), "db", srv.DBPath(),
			"workers", model.Workers, "cores", model.Cores, "bootstrap_cpu", model.BootstrapCPU, "lookup_cpu", model.LookupCost(), "per_row_cpu", model.PerRowCPU,
			"backlog", model.Backlog, "proxy_timeout", model.ProxyTimeout, "signed", sec != "", "version", buildinfo.Version)
	}
	if err := srv.Serve(ctx, ln); err != nil {
		log.Error("serve", "err", err)
		return 1
	}
	log.Info("fakelaravel stopped")
	return 0
}

// flagModel is the model of the command line's values: a -bootstrap-cpu given without -lookup-cpu
// is every request's cost (LookupCPU zero), as before reads had a cost of their own, so that a
// setting written for that model keeps its meaning.
func flagModel(values fakelaravel.CapacityModel, set map[string]bool) fakelaravel.CapacityModel {
	if set["bootstrap-cpu"] && !set["lookup-cpu"] {
		values.LookupCPU = 0
	}
	return values
}

// mergeModel takes the calibration's parameters except those set explicitly on the command line.
func mergeModel(cal, flags fakelaravel.CapacityModel, set map[string]bool) fakelaravel.CapacityModel {
	m := cal
	for _, f := range fakelaravel.CapacityFlags() {
		if set[f.Name] {
			f.Copy(&m, &flags)
		}
	}
	if set["bootstrap-cpu"] {
		// flags.LookupCPU is zero (follow the bootstrap) when only -bootstrap-cpu was given.
		m.LookupCPU = flags.LookupCPU
	}
	return m
}

func runConform(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fakelaravel conform", flag.ContinueOnError)
	usage := cli.Defaults(fs, "usage: fakelaravel conform -url URL -token TOKEN [-secret S]\n\n"+
		"Checks that the Laravel app at URL implements the wagate contract.\n"+
		"It writes sessions whose ids start with \"conform-\" into the target's database.\n"+
		"Exit codes: 0 every check passed (or -help), 1 a check failed, 2 bad command line.\n\nflags:\n")
	var (
		url        = fs.String("url", "", "base URL of the Laravel app, e.g. http://127.0.0.1:8000")
		token      = fs.String("token", "", "bearer token (or -token-file, or $FAKELARAVEL_TOKEN)")
		tokenFile  = fs.String("token-file", "", "file holding the bearer token")
		secretFlag = fs.String("secret", "", "HMAC secret; adds the signature checks (or -secret-file, or $FAKELARAVEL_SECRET)")
		secretFile = fs.String("secret-file", "", "file holding the HMAC secret")
		timeout    = fs.Duration("timeout", 2*time.Minute, "time limit of the whole check")
		requireV2  = fs.Bool("require-signature-v2", false, "the target refuses v1-only signatures (its migration to v2 is over): expect a 401 for them")
		messages   = fs.Bool("messages", false, "also check the message and receipt endpoints (stored once per message id, receipts only forward)")
	)
	if code, done := cli.Parse(fs, args, stdout, stderr, usage); done {
		return code
	}
	tok, err := secret(*token, *tokenFile, "FAKELARAVEL_TOKEN")
	if err != nil || tok == "" || *url == "" {
		return cli.Usagef(stderr, usage, "fakelaravel conform: -url and a token are required")
	}
	sec, err := secret(*secretFlag, *secretFile, "FAKELARAVEL_SECRET")
	if err != nil {
		fmt.Fprintf(stderr, "fakelaravel conform: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	opts := conform.Options{URL: *url, Token: tok, Out: stdout, RequireSignatureV2: *requireV2, Messages: *messages}
	if sec != "" {
		opts.Secret = []byte(sec)
	}
	rep, err := conform.Run(ctx, opts)
	if err != nil {
		fmt.Fprintf(stderr, "fakelaravel conform: %v\n", err)
		return 2
	}
	if !rep.Passed() {
		return 1
	}
	return 0
}
