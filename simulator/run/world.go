package run

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"wagate/fakelaravel"
	"wagate/gateway/config"
	"wagate/simulator/fakewa"
	"wagate/simulator/scenario"
)

// world is everything a run starts or connects to.
type world struct {
	log *slog.Logger

	wa       waSide
	waServer *fakewa.Server // nil when external
	waChild  *child         // fakewa in a child process (whatsapp.process), or nil
	waAddr   string
	waRoot   string // root public key, hex

	laravelURL   string
	laravelToken string
	admin        *fakelaravel.AdminClient
	laravel      *child       // nil when external
	real         *realLaravel // the real app behind fakelaravel's front (laravel.real), or nil

	redis        *child
	redisURL     string
	redisVersion string

	gatewayURL     string
	gatewayToken   string
	gateway        *child // nil when external
	gatewayVersion string
	// gatewayFile is the gateway's configuration file (gatewayFile): written to the run's folder
	// for the gateway started here; what the scenario asked of an external one.
	gatewayFile []byte
	// cluster is the replicas, their front and PostgreSQL when gateway.replicas > 1 (replicas.go);
	// gateway is nil then and gatewayURL is the front's.
	cluster *clusterWorld

	tmp string
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// gatewayFile is the gateway's configuration file of a run (gateway.yaml in its folder): the
// scenario's gateway settings over the gateway's defaults, every setting by its key, without the
// secrets and what the run gives each gateway (scenario.PerRun), which go in its environment.
func gatewayFile(c config.Config) []byte { return c.YAML(scenario.PerRun(&c)...) }

// gatewayEnviron is the environment of the gateway a run starts: what the run gives it and the
// secrets, which its file leaves out.
func gatewayEnviron(c config.Config) []string {
	return c.Environ(append(scenario.PerRun(&c), c.Secrets()...)...)
}

// gatewayProcessEnv is a gateway process's environment: gatewayEnviron and the Go runtime
// settings the scenario gives (gateway.gogc, gateway.gomemlimit).
func gatewayProcessEnv(g scenario.Gateway, c config.Config) []string {
	return append(gatewayEnviron(c), g.GoRuntime.Env()...)
}

// laravelArgs maps the scenario's fakelaravel configuration to bin/fakelaravel flags: the
// capacity parameters the scenario gives (fakelaravel.Capacity.Args), then faultArgs.
func laravelArgs(l scenario.Laravel, seed uint64) []string {
	return append(l.Capacity.Args(), faultArgs(l, seed)...)
}

// faultArgs are the bin/fakelaravel flags of the seed, the initial faults and the scenario's
// extra flags: what applies both to the model and to a front of the real app.
func faultArgs(l scenario.Laravel, seed uint64) []string {
	var args []string
	add := func(k, v string) { args = append(args, "-"+k+"="+v) }
	add("seed", strconv.FormatUint(seed, 10))
	if f := l.Faults; f != nil {
		add("error-rate", strconv.FormatFloat(f.ErrorRate, 'f', -1, 64))
		if f.ErrorStatus != 0 {
			add("error-status", strconv.Itoa(f.ErrorStatus))
		}
		if f.RetryAfter > 0 {
			add("retry-after", strconv.Itoa(int(f.RetryAfter.Std().Seconds())))
		}
		if f.ExtraLatency > 0 {
			add("extra-latency", f.ExtraLatency.String())
		}
		add("lost-response-rate", strconv.FormatFloat(f.LostResponseRate, 'f', -1, 64))
	}
	for k, v := range l.Flags {
		add(strings.TrimLeft(k, "-"), v)
	}
	return args
}

// laravelFaults converts a scenario fault to fakelaravel's; duration bounds a down window. The
// original vocabulary maps to fakelaravel's flat fields, as it always did; redirects, undecodable
// or unaccounted answers and item refusals map to its timed windows, lasting duration (0: until
// the faults are replaced).
func laravelFaults(f *scenario.LaravelFaults, duration time.Duration) (fakelaravel.Faults, error) {
	if f == nil {
		return fakelaravel.Faults{}, nil
	}
	out := fakelaravel.Faults{
		ErrorRate:        f.ErrorRate,
		ErrorStatus:      f.ErrorStatus,
		RetryAfterS:      int(f.RetryAfter.Std().Seconds()),
		ExtraLatencyMS:   f.ExtraLatency.Std().Milliseconds(),
		LostResponseRate: f.LostResponseRate,
	}
	window := func(w fakelaravel.FaultWindow) {
		w.DurationMS = duration.Milliseconds()
		out.Windows = append(out.Windows, w)
	}
	if f.RedirectTo != "" {
		// A 3xx to a named host, with its Retry-After if any: a status window.
		out.ErrorRate, out.ErrorStatus, out.RetryAfterS = 0, 0, 0
		if f.ErrorRate > 0 {
			window(fakelaravel.FaultWindow{Kind: fakelaravel.FaultStatus, Rate: f.ErrorRate, Status: f.ErrorStatus,
				RetryAfterS: int64(f.RetryAfter.Std().Seconds()), Location: f.RedirectTo})
		}
	}
	if f.BadBodyRate > 0 {
		window(fakelaravel.FaultWindow{Kind: fakelaravel.FaultGarbageBody, Rate: f.BadBodyRate})
	}
	if f.UnaccountedRate > 0 {
		window(fakelaravel.FaultWindow{Kind: fakelaravel.FaultUnaccountedFailures, Rate: f.UnaccountedRate})
	}
	if len(f.RefuseSessions) > 0 {
		window(fakelaravel.FaultWindow{Kind: fakelaravel.FaultRefuseItems, Rate: 1, Sessions: f.RefuseSessions})
	}
	if f.Down {
		d := duration
		if d <= 0 {
			d = 24 * time.Hour
		}
		out.DownWindows = []fakelaravel.DownWindow{{StartAfterMS: 0, DurationMS: d.Milliseconds()}}
	}
	if err := out.Validate(); err != nil {
		return out, fmt.Errorf("fakelaravel cannot inject %s: %w", describeLaravelFaults(f), err)
	}
	return out, nil
}

// start brings the world up: fakewa, fakelaravel, Redis, the gateway. runDir receives the
// gateway's configuration file, runDir/logs the children's logs. On error, whatever was started
// is stopped.
func (w *world) start(ctx context.Context, f *scenario.File, binDir, runDir string) (err error) {
	logDir := filepath.Join(runDir, "logs")
	defer func() {
		if err != nil {
			w.stop()
		}
	}()
	w.tmp, err = os.MkdirTemp("", "wagate-sim-")
	if err != nil {
		return err
	}
	// fakewa
	control := f.WhatsApp.Control
	if control == "" && f.WhatsApp.Process {
		if w.waChild, control, err = startFakewa(ctx, logDir); err != nil {
			return err
		}
	}
	if control != "" {
		cc := fakewa.NewControlClient(control)
		addr, root, err := cc.Info(ctx)
		if err != nil {
			return fmt.Errorf("fakewa control %s: %w", control, err)
		}
		w.wa, w.waAddr, w.waRoot = remote{cc}, addr, hex.EncodeToString(root)
		if f.WhatsApp.Listen != "" {
			w.waAddr = f.WhatsApp.Listen
		}
	} else {
		srv, err := fakewa.New(fakewa.Config{Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return fmt.Errorf("fakewa: %w", err)
		}
		if err := srv.Start(context.WithoutCancel(ctx)); err != nil {
			return fmt.Errorf("fakewa: %w", err)
		}
		w.waServer, w.wa, w.waAddr, w.waRoot = srv, inProcess{srv}, srv.Addr(), hex.EncodeToString(srv.RootPublicKey())
	}
	w.log.Info("fakewa ready", "addr", w.waAddr, "in_process", w.waServer != nil, "child_process", w.waChild != nil)

	// fakelaravel
	hc := &http.Client{Timeout: 30 * time.Second}
	if f.Laravel.URL != "" {
		w.laravelURL, w.laravelToken = strings.TrimRight(f.Laravel.URL, "/"), f.Laravel.Token
		adminTok := f.Laravel.AdminToken
		if adminTok == "" {
			adminTok = f.Laravel.Token
		}
		w.admin = fakelaravel.NewAdminClient(w.laravelURL, adminTok, hc)
		if err := w.admin.Healthy(ctx); err != nil {
			return fmt.Errorf("fakelaravel at %s: %w", w.laravelURL, err)
		}
	} else {
		bin, err := findBinary(binDir, "fakelaravel")
		if err != nil {
			return err
		}
		addr, err := freePort()
		if err != nil {
			return err
		}
		adminTok := randomToken()
		var args, env []string
		if f.Laravel.Real {
			// The real app behind fakelaravel as its measuring front.
			w.log.Info("starting the real Laravel app (laravel/scripts/up.sh)")
			if w.real, err = startRealLaravel(ctx, f.Laravel, binDir, filepath.Join(logDir, "laravel-up.log")); err != nil {
				return err
			}
			w.laravelToken = w.real.token
			upTimeout := 70 * time.Second // beyond nginx's own 60 s read timeout, which answers 504 first
			if pt := f.Laravel.Capacity.Given().ProxyTimeout; pt > 0 {
				upTimeout = pt + 10*time.Second
			}
			args = append([]string{"-addr", addr, "-upstream", w.real.url, "-upstream-db", w.real.db,
				"-upstream-workers", strconv.Itoa(w.real.workers), "-upstream-timeout", upTimeout.String()}, faultArgs(f.Laravel, f.Seed)...)
			env = []string{"FAKELARAVEL_ADMIN_TOKEN=" + adminTok}
			w.log.Info("real Laravel ready", "url", w.real.url, "app", w.real.description())
		} else {
			w.laravelToken, adminTok = randomToken(), ""
			args = append([]string{"-addr", addr, "-db", filepath.Join(w.tmp, "laravel.db")}, laravelArgs(f.Laravel, f.Seed)...)
			env = []string{"FAKELARAVEL_TOKEN=" + w.laravelToken}
		}
		w.laravel, err = startChild("fakelaravel", bin, args, env, filepath.Join(logDir, "fakelaravel.log"))
		if err != nil {
			return err
		}
		w.laravelURL = "http://" + addr
		if adminTok == "" {
			adminTok = w.laravelToken
		}
		w.admin = fakelaravel.NewAdminClient(w.laravelURL, adminTok, hc)
		if err := waitFor(ctx, w.laravel, 20*time.Second, w.admin.Healthy); err != nil {
			return err
		}
	}
	w.log.Info("fakelaravel ready", "url", w.laravelURL, "started_here", w.laravel != nil, "front_of_real_laravel", w.real != nil)

	// Redis
	w.redisVersion = "embedded (miniredis)"
	switch r := f.Gateway.Redis; {
	case r == scenario.RedisServer && f.Gateway.URL == "":
		c, url, version, err := startRedis(ctx, w.tmp)
		if err != nil && f.Gateway.Cluster() {
			return fmt.Errorf("gateway.replicas %d share one Redis and no redis-server could be started: %w", f.Gateway.Replicas, err)
		}
		if err != nil {
			w.log.Warn("no redis-server could be started; the gateway embeds miniredis", "err", err)
			w.redisVersion = "embedded (miniredis; redis-server unavailable)"
		} else {
			w.redis, w.redisURL, w.redisVersion = c, url, version
		}
	case strings.HasPrefix(r, "redis"):
		w.redisURL, w.redisVersion = r, "external redis"
	}

	// gateway
	w.gatewayFile = gatewayFile(f.Gateway.Config)
	if f.Gateway.URL != "" {
		w.gatewayURL, w.gatewayToken = strings.TrimRight(f.Gateway.URL, "/"), f.Gateway.Token
		w.gatewayVersion = "external"
		return waitFor(ctx, nil, 5*time.Second, func(ctx context.Context) error { return httpOK(ctx, hc, w.gatewayURL+"/healthz", "") })
	}
	bin, err := findBinary(binDir, "gateway")
	if err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, bin, "-version").Output(); err == nil {
		w.gatewayVersion = strings.TrimSpace(string(out))
	}
	addr, err := freePort()
	if err != nil {
		return err
	}
	w.gatewayToken = randomToken()
	dataDir := filepath.Join(w.tmp, "gateway")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return err
	}
	run := scenario.GatewayRun{Addr: addr, APIToken: w.gatewayToken, LaravelURL: w.laravelURL, LaravelToken: w.laravelToken,
		DataDir: dataDir, RedisURL: w.redisURL, WADial: w.waAddr, WARootPubKey: w.waRoot}
	if w.real != nil {
		run.LaravelSecret = w.real.secret // the real app checks signatures
	}
	cfg := f.Gateway.RunConfig(run)
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("the gateway's configuration: %w", err)
	}
	file := filepath.Join(runDir, "gateway.yaml")
	if err := os.WriteFile(file, w.gatewayFile, 0o644); err != nil {
		return fmt.Errorf("the gateway's configuration: %w", err)
	}
	if f.Gateway.Cluster() {
		return w.startCluster(ctx, hc, f, bin, file, run, logDir)
	}
	w.gateway, err = startChild("gateway", bin, []string{"-config", file}, gatewayProcessEnv(f.Gateway, cfg), filepath.Join(logDir, "gateway.log"))
	if err != nil {
		return err
	}
	w.gatewayURL = "http://" + addr
	if err := waitFor(ctx, w.gateway, 30*time.Second, func(ctx context.Context) error { return httpOK(ctx, hc, w.gatewayURL+"/healthz", "") }); err != nil {
		return err
	}
	w.log.Info("gateway ready", "url", w.gatewayURL, "pid", w.gateway.Pid(), "mode", f.Gateway.Mode, "redis", w.redisVersion)
	return nil
}

func httpOK(ctx context.Context, hc *http.Client, url, token string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}

// stop ends everything started, the gateway first (it flushes to Laravel), then fakelaravel,
// Redis and fakewa, and removes the temporary stores. It is safe to call more than once.
func (w *world) stop() {
	if w.cluster != nil {
		w.cluster.stop(w.log.Warn)
	}
	if w.gateway != nil {
		if err := w.gateway.stop(20 * time.Second); err != nil {
			w.log.Warn("gateway stop", "err", err)
		}
	}
	if w.laravel != nil {
		if err := w.laravel.stop(10 * time.Second); err != nil {
			w.log.Warn("fakelaravel stop", "err", err)
		}
	}
	if w.real != nil {
		w.real.stop()
	}
	if w.redis != nil {
		_ = w.redis.stop(5 * time.Second)
	}
	if w.waServer != nil {
		_ = w.waServer.Close()
	}
	if w.waChild != nil {
		_ = w.waChild.stop(5 * time.Second)
	}
	if w.tmp != "" {
		_ = os.RemoveAll(w.tmp)
		w.tmp = ""
	}
}

// startFakewa starts fakewa as a child process (this binary's fakewa command) on free loopback
// ports and returns it with its control API's address once that answers.
func startFakewa(ctx context.Context, logDir string) (*child, string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "", fmt.Errorf("fakewa: the simulator's own binary: %w", err)
	}
	listen, err := freePort()
	if err != nil {
		return nil, "", fmt.Errorf("fakewa: %w", err)
	}
	control, err := freePort()
	if err != nil {
		return nil, "", fmt.Errorf("fakewa: %w", err)
	}
	c, err := startChild("fakewa", self, []string{"fakewa", "-listen", listen, "-control", control}, nil, filepath.Join(logDir, "fakewa.log"))
	if err != nil {
		return nil, "", err
	}
	cc := fakewa.NewControlClient(control)
	if err := waitFor(ctx, c, 15*time.Second, func(ctx context.Context) error { _, _, err := cc.Info(ctx); return err }); err != nil {
		_ = c.stop(5 * time.Second)
		return nil, "", fmt.Errorf("fakewa child: %w", err)
	}
	return c, control, nil
}
