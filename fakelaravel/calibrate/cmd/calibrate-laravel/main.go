// Command calibrate-laravel measures the reference Laravel app (started by `make laravel-up`) on
// this machine, fits fakelaravel's capacity model to it, writes the model and the raw figures to
// fakelaravel/calibration.json, then runs the same load against an in-process fakelaravel with
// that model and prints both side by side (also written to fakelaravel/calibration.md).
//
// Usage (what `make calibrate-laravel` runs):
//
//	calibrate-laravel [-env /tmp/wagate-laravel/env] [-out fakelaravel/calibration.json]
//	                  [-table fakelaravel/calibration.md] [-quick] [-strict] [-force]
//
// When other processes used more than half of the machine's CPUs while the real app was
// saturated, the figures measure them rather than Laravel: the command then exits 1 and leaves
// the calibration files unchanged, unless -force.
//
// The URL, token, secret, FPM workers, backlog and proxy timeout come from the env file that
// laravel/scripts/up.sh writes; -url and -token override the first two. The whole run is bounded:
// about 35 seconds per request kind and target with the default plan, 3 kinds, 2 targets.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"wagate/fakelaravel"
	"wagate/fakelaravel/calibrate"
	"wagate/internal/buildinfo"
	"wagate/internal/laravelup"
	"wagate/reports/document"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "calibrate-laravel:", err)
		os.Exit(1)
	}
}

// options are the command-line settings.
type options struct {
	envFile, url, token, out, table, kinds  string
	quick, strict, force, version, fakeOnly bool
	timeout                                 time.Duration
}

func run(args []string, stdout io.Writer) error {
	var o options
	fs := flag.NewFlagSet("calibrate-laravel", flag.ContinueOnError)
	fs.StringVar(&o.envFile, "env", "/tmp/wagate-laravel/env", "env file written by laravel/scripts/up.sh")
	fs.StringVar(&o.url, "url", "", "base URL of the Laravel app (default: WAGATE_LARAVEL_URL of -env)")
	fs.StringVar(&o.token, "token", "", "bearer token (default: WAGATE_LARAVEL_TOKEN of -env)")
	fs.StringVar(&o.out, "out", "fakelaravel/calibration.json", "calibration file to write")
	fs.StringVar(&o.table, "table", "fakelaravel/calibration.md", "Markdown report to write")
	fs.StringVar(&o.kinds, "kinds", "get,post1,post50", "request kinds to measure")
	fs.BoolVar(&o.quick, "quick", false, "a short plan (about a third of the time; noisier)")
	fs.BoolVar(&o.strict, "strict", false, "exit 1 when a figure is out of tolerance")
	fs.BoolVar(&o.force, "force", false, "write the calibration even when other processes kept the machine busy")
	fs.DurationVar(&o.timeout, "timeout", 6*time.Minute, "bound on the whole run")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	fs.BoolVar(&o.fakeOnly, "fake-only", false, "measure only fakelaravel, with the model and at the real app's rates stored in -out, "+
		"and print it beside the stored real figures and the simulated model; writes nothing (no Laravel needed)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.version {
		fmt.Fprintln(stdout, buildinfo.String("calibrate-laravel"))
		return nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if o.fakeOnly {
		return fakeOnly(ctx, o, stdout)
	}
	return calibrateAll(ctx, o, stdout)
}

// deployment is what the env file of laravel/scripts/up.sh says about the running app.
type deployment struct {
	url, token   string
	secret       []byte
	workers      int
	backlog      int
	proxyTimeout time.Duration
	dir          string
}

func loadDeployment(o options) (deployment, error) {
	env, err := laravelup.ReadEnv(o.envFile)
	if err != nil {
		return deployment{}, err
	}
	d := deployment{url: env["WAGATE_LARAVEL_URL"], token: env["WAGATE_LARAVEL_TOKEN"], secret: []byte(env["WAGATE_LARAVEL_SECRET"]), dir: env["WAGATE_LARAVEL_DIR"]}
	if o.url != "" {
		d.url = o.url
	}
	if o.token != "" {
		d.token = o.token
	}
	num := func(key string) (int, error) {
		n, err := strconv.Atoi(env[key])
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("%s: %s=%q is not a positive integer", o.envFile, key, env[key])
		}
		return n, nil
	}
	if d.workers, err = num("WAGATE_LARAVEL_WORKERS"); err != nil {
		return d, err
	}
	if d.backlog, err = num("WAGATE_LARAVEL_BACKLOG"); err != nil {
		return d, err
	}
	pt, err := num("WAGATE_LARAVEL_PROXY_TIMEOUT_MS")
	if err != nil {
		return d, err
	}
	d.proxyTimeout = time.Duration(pt) * time.Millisecond
	if d.url == "" || d.token == "" {
		return d, fmt.Errorf("%s: WAGATE_LARAVEL_URL and WAGATE_LARAVEL_TOKEN are required", o.envFile)
	}
	return d, nil
}

func parseKinds(s string) ([]calibrate.Kind, error) {
	var kinds []calibrate.Kind
	for _, f := range strings.Split(s, ",") {
		k := calibrate.Kind(strings.TrimSpace(f))
		if !slices.Contains(calibrate.Kinds, k) {
			return nil, fmt.Errorf("unknown kind %q (want get, post1, post50)", k)
		}
		kinds = append(kinds, k)
	}
	return kinds, nil
}

func calibrateAll(ctx context.Context, o options, stdout io.Writer) error {
	d, err := loadDeployment(o)
	if err != nil {
		return err
	}
	kinds, err := parseKinds(o.kinds)
	if err != nil {
		return err
	}
	plan := calibrate.DefaultPlan(d.workers)
	if o.quick {
		plan.WarmUp, plan.Solo, plan.Saturation, plan.SaturationRepeats = time.Second, time.Second, 2*time.Second, 2
		plan.Load, plan.LoadRepeats, plan.Overload, plan.Settle = 3*time.Second, 1, 3*time.Second, 2*time.Second
	}
	logf := func(format string, args ...any) { fmt.Fprintf(stdout, "  "+format+"\n", args...) }

	realTarget := calibrate.Target{Name: "laravel", BaseURL: d.url, Token: d.token, Secret: d.secret}
	sampler := calibrate.Sampler{Proc: "/proc", Roots: laravelup.MasterPids(d.dir)}
	fmt.Fprintf(stdout, "calibrate-laravel: measuring the real app at %s (workers %d, backlog %d, proxy timeout %v)\n", d.url, d.workers, d.backlog, d.proxyTimeout)
	client := calibrate.NewClient()
	real, err := calibrate.Measure(ctx, realTarget, client, kinds, plan, sampler, nil, logf)
	client.CloseIdleConnections()
	if err != nil {
		return fmt.Errorf("measure the real app: %w", err)
	}

	// On a machine where other processes took most of the CPU, the figures measure them, not
	// Laravel: refuse to overwrite the committed calibration with them.
	busy := othersMedian(real)
	if limit := BusyShare * float64(runtime.NumCPU()); busy > limit && !o.force {
		return fmt.Errorf("other processes used %.2f of %d cores while the app was saturated (limit %.2f): the figures would "+
			"measure them, not Laravel; %s and %s left unchanged (rerun when the machine is quieter, or pass -force)",
			busy, runtime.NumCPU(), limit, o.out, o.table)
	}

	fit, err := calibrate.Fit(real, calibrate.Fixed{Workers: d.workers, Backlog: d.backlog, ProxyTimeout: d.proxyTimeout}, calibrate.FitOptions{Seed: plan.Seed})
	if err != nil {
		return err
	}
	model := stableModel(fit.Model.Calibrated())
	fit.Model = model.CapacityModel()
	fmt.Fprintf(stdout, "calibrate-laravel: fitted cores %.2f, bootstrap %.2f ms, lookup %.2f ms, per row %.3f ms, jitter %.2f (CPU line x %.2f, cores x %.3f, +%.2f ms per request; RMS log error %.2f)\n",
		model.Cores, model.BootstrapCPUMS, model.LookupCPUMS, model.PerRowCPUMS, model.Jitter, fit.CostScale, fit.CoresFactor, fit.OverheadMS, fit.Error)

	fmt.Fprintln(stdout, "calibrate-laravel: the same load against an in-process fakelaravel with the fitted model")
	fake, err := measureFake(ctx, fit.Model, real, kinds, plan, logf)
	if err != nil {
		return err
	}

	machine := calibrate.Machine{
		CPUs: runtime.NumCPU(), LoadAverageBefore: real.LoadAvgBefore, LoadAverageAfter: real.LoadAvgAfter,
		Software: "Laravel 8.83 (Debian php-laravel-framework) + PHP-FPM 8.2 (opcache, pm=static) + nginx 1.22, SQLite WAL, the app under laravel/",
	}
	machine.OthersCores = busy
	rows := calibrate.Compare(real, fake, fit.Model, plan.Seed)
	report := calibrate.Report{Real: real, Fake: fake, Fit: fit, Model: model, Rows: rows, Machine: machine}

	raw, err := json.Marshal(map[string]any{
		"tool":        buildinfo.String("calibrate-laravel"),
		"machine":     machine,
		"plan":        plan,
		"laravel":     calibrate.Summarize(real),
		"fit":         fit,
		"fakelaravel": calibrate.Summarize(fake),
		"comparison":  rows,
	})
	if err != nil {
		return fmt.Errorf("encode raw figures: %w", err)
	}
	cal := fakelaravel.Calibration{
		Source:     "make calibrate-laravel: " + machine.Software + fmt.Sprintf(", on a %d-CPU machine shared with other work (load average %.1f)", machine.CPUs, real.LoadAvgBefore[0]),
		MeasuredAt: real.Started.Format(time.RFC3339),
		Model:      model,
		Raw:        raw,
	}
	data, err := json.MarshalIndent(cal, "", "  ")
	if err != nil {
		return fmt.Errorf("encode calibration: %w", err)
	}
	if _, err := fakelaravel.ParseCalibration(data); err != nil {
		return fmt.Errorf("the fitted calibration does not validate: %w", err)
	}
	if err := os.WriteFile(o.out, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", o.out, err)
	}
	md := report.Markdown()
	if err := os.WriteFile(o.table, []byte(md), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", o.table, err)
	}
	fmt.Fprintf(stdout, "\n%s\n\ncalibrate-laravel: wrote %s and %s\n", document.MarkdownTable(calibrate.Table(rows)), o.out, o.table)
	ok, total := calibrate.Passed(rows)
	fmt.Fprintf(stdout, "calibrate-laravel: %d of %d figures within tolerance (of %d; the rest were measured while other processes used over %.2f cores)\n",
		ok, total, len(rows), calibrate.BusyLimit)
	if o.strict && ok < total {
		return errors.New("figures out of tolerance (-strict)")
	}
	return nil
}

// storedRaw is the part of calibration.json's raw figures -fake-only reads.
type storedRaw struct {
	Laravel calibrate.Summary `json:"laravel"`
	Plan    calibrate.Plan    `json:"plan"`
}

// fakeOnly measures fakelaravel alone with the stored model at the stored real app's rates: a way
// to see how closely the fake follows its model on this machine without Laravel.
func fakeOnly(ctx context.Context, o options, stdout io.Writer) error {
	data, err := os.ReadFile(o.out)
	if err != nil {
		return err
	}
	cal, err := fakelaravel.ParseCalibration(data)
	if err != nil {
		return err
	}
	var raw storedRaw
	if err := json.Unmarshal(cal.Raw, &raw); err != nil || len(raw.Laravel.Kinds) == 0 {
		return fmt.Errorf("%s holds no measured real figures (raw.laravel): %v", o.out, err)
	}
	kinds, err := parseKinds(o.kinds)
	if err != nil {
		return err
	}
	plan := raw.Plan
	if o.quick {
		plan.SaturationRepeats, plan.LoadRepeats = 2, 1
	}
	model := cal.Model.CapacityModel()
	logf := func(format string, args ...any) { fmt.Fprintf(stdout, "  "+format+"\n", args...) }
	var real []calibrate.KindFigures
	for _, ks := range raw.Laravel.Kinds {
		real = append(real, ks.Figures())
	}
	offered := &calibrate.Measurement{}
	for _, ks := range raw.Laravel.Kinds {
		offered.Kinds = append(offered.Kinds, calibrate.KindMeasurement{Kind: ks.Kind, SaturationRPS: ks.SaturationRPS})
	}
	fmt.Fprintf(stdout, "calibrate-laravel: fakelaravel only, model of %s (measured %s)\n", o.out, cal.MeasuredAt)
	fake, err := measureFake(ctx, model, offered, kinds, plan, logf)
	if err != nil {
		return err
	}
	var ff []calibrate.KindFigures
	for i := range fake.Kinds {
		ff = append(ff, fake.Kinds[i].Figures())
	}
	rows := calibrate.CompareFigures(real, ff, plan, model, plan.Seed)
	ok, total := calibrate.Passed(rows)
	fmt.Fprintf(stdout, "\n%s\n\ncalibrate-laravel: %d of %d figures within tolerance (stored real figures; nothing written)\n", document.MarkdownTable(calibrate.Table(rows)), ok, total)
	return nil
}

// BusyShare is the share of the machine's CPUs other processes may use while the real app is
// saturated for a calibration to be written without -force.
const BusyShare = 0.5

// othersMedian is the median over kinds of the CPU (cores) other processes used during the
// saturation runs.
func othersMedian(m *calibrate.Measurement) float64 {
	var others []float64
	for _, km := range m.Kinds {
		others = append(others, km.OthersCores)
	}
	if len(others) == 0 {
		return 0
	}
	slices.Sort(others)
	return others[len(others)/2]
}

// stableMS rounds a duration in milliseconds to whole microseconds, nudged so that converting it
// to a time.Duration and back (as fakelaravel does with calibration.json) gives the same value.
func stableMS(v float64) float64 {
	v = math.Round(v*1000) / 1000
	for k := range 10 {
		c := v + float64(k)/1000
		d := time.Duration(c * float64(time.Millisecond))
		back := time.Duration(float64(d) / float64(time.Millisecond) * float64(time.Millisecond))
		if d == back && d%time.Microsecond == 0 {
			return float64(d) / float64(time.Millisecond)
		}
	}
	return v
}

// stableModel rounds the model to values that survive calibration.json's round trip, and cores
// and jitter to 3 decimals.
func stableModel(m fakelaravel.CalibratedModel) fakelaravel.CalibratedModel {
	m.BootstrapCPUMS, m.PerRowCPUMS, m.ProxyTimeoutMS = stableMS(m.BootstrapCPUMS), stableMS(m.PerRowCPUMS), stableMS(m.ProxyTimeoutMS)
	m.LookupCPUMS = stableMS(m.LookupCPUMS)
	m.Cores = math.Round(m.Cores*1000) / 1000
	m.Jitter = math.Round(m.Jitter*1000) / 1000
	return m
}

// measureFake starts fakelaravel with model on a loopback listener and runs the plan against it
// at the real app's rates.
func measureFake(ctx context.Context, model fakelaravel.CapacityModel, real *calibrate.Measurement, kinds []calibrate.Kind, plan calibrate.Plan, logf func(string, ...any)) (*calibrate.Measurement, error) {
	const token = "calibrate-fake-token"
	srv, err := fakelaravel.New(ctx, fakelaravel.Config{
		Token: token, Capacity: model, Seed: plan.Seed,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return nil, fmt.Errorf("start fakelaravel: %w", err)
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln) //nolint:errcheck // ends with Shutdown below
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	offered := map[calibrate.Kind]float64{}
	for _, km := range real.Kinds {
		offered[km.Kind] = km.SaturationRPS
	}
	client := calibrate.NewClient()
	defer client.CloseIdleConnections()
	target := calibrate.Target{Name: "fakelaravel", BaseURL: "http://" + ln.Addr().String(), Token: token}
	fake, err := calibrate.Measure(ctx, target, client, kinds, plan, calibrate.Sampler{Proc: "/proc"}, offered, logf)
	if err != nil {
		return nil, fmt.Errorf("measure fakelaravel: %w", err)
	}
	return fake, nil
}
