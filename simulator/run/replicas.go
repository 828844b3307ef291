package run

// Cluster mode (gateway.replicas > 1): the run starts a PostgreSQL server for the shared store,
// N gateway processes on the run's redis-server, each with its own gateway id, port, advertise
// URL and data folder, and a round-robin front before them (front.go) that the users, the
// ground truth and the recovery watches call: any replica takes any request, as behind a load
// balancer. Replica faults (kill, term, pause of one replica; a rolling restart of all) act on
// one process and take it out of the front's rotation while it is down, as a load balancer's
// health check would (without its detection delay).

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"wagate/simulator/scenario"
)

// replica is one gateway process of a cluster run; a restart keeps its id, address and stores.
type replica struct {
	index int
	id    string // WAGATE_GATEWAY_ID: gateway-1, gateway-2, ...
	addr  string // its API's loopback address
	// child and down are guarded by clusterWorld.mu: down is true while the simulator has the
	// replica stopped, paused or restarting on purpose (out of the front's rotation).
	child *child
	down  bool
}

func (rp *replica) url() string { return "http://" + rp.addr }

// clusterWorld is what a cluster run adds to the world.
type clusterWorld struct {
	mu       sync.Mutex
	replicas []*replica
	front    *front
	postgres *child
	pgDir    string
	pgDSN    string
	// pgVersion is `postgres --version`.
	pgVersion string
}

// children are the replicas' processes the simulator has not stopped on purpose.
func (cw *clusterWorld) children() []*child {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	var out []*child
	for _, rp := range cw.replicas {
		if !rp.down && rp.child != nil {
			out = append(out, rp.child)
		}
	}
	return out
}

// up are the replicas in the front's rotation.
func (cw *clusterWorld) up() []*replica {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	var out []*replica
	for _, rp := range cw.replicas {
		if !rp.down {
			out = append(out, rp)
		}
	}
	return out
}

// anyDown reports whether a replica is stopped or restarting on purpose.
func (cw *clusterWorld) anyDown() bool { return len(cw.up()) < len(cw.replicas) }

// setDown takes a replica out of the front's rotation (true) or puts it back with its current
// process (false).
func (cw *clusterWorld) setDown(rp *replica, down bool, c *child) {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	rp.down = down
	if c != nil {
		rp.child = c
	}
}

// startCluster starts PostgreSQL, the replicas and the front; the caller has started
// redis-server. file is the replicas' common gateway.yaml.
func (w *world) startCluster(ctx context.Context, hc *http.Client, f *scenario.File, bin, file string, run scenario.GatewayRun, logDir string) error {
	if w.redis == nil && w.redisURL == "" {
		return errors.New("gateway.replicas > 1 needs a real Redis the replicas share, and no redis-server could be started (is redis-server installed?); the embedded one is refused in cluster mode")
	}
	cw := &clusterWorld{}
	w.cluster = cw
	var err error
	if cw.postgres, cw.pgDir, cw.pgDSN, cw.pgVersion, err = startPostgres(ctx, filepath.Join(logDir, "postgres.log")); err != nil {
		return fmt.Errorf("cluster mode's shared store: %w (SQLite is refused in cluster mode)", err)
	}
	w.log.Info("postgres ready", "version", cw.pgVersion)
	for i := range f.Gateway.Replicas {
		addr, err := freePort()
		if err != nil {
			return err
		}
		rp := &replica{index: i, id: fmt.Sprintf("gateway-%d", i+1), addr: addr}
		run := run
		run.Addr, run.GatewayID, run.AdvertiseURL, run.StoreDSN = addr, rp.id, rp.url(), cw.pgDSN
		run.DataDir = filepath.Join(w.tmp, rp.id)
		if err := os.MkdirAll(run.DataDir, 0o700); err != nil {
			return err
		}
		cfg := f.Gateway.RunConfig(run)
		if err := cfg.Validate(); err != nil {
			return fmt.Errorf("replica %s's configuration: %w", rp.id, err)
		}
		if rp.child, err = startChild(rp.id, bin, []string{"-config", file}, gatewayProcessEnv(f.Gateway, cfg), filepath.Join(logDir, rp.id+".log")); err != nil {
			return err
		}
		cw.replicas = append(cw.replicas, rp)
		if i == 0 {
			// The first replica creates the store's tables; replicas starting together race
			// to create them in Postgres ("type wagate_sessions already exists").
			if err := waitFor(ctx, rp.child, 60*time.Second, func(ctx context.Context) error { return httpOK(ctx, hc, rp.url()+"/healthz", "") }); err != nil {
				return fmt.Errorf("replica %s: %w", rp.id, err)
			}
		}
	}
	for _, rp := range cw.replicas {
		if err := waitFor(ctx, rp.child, 60*time.Second, func(ctx context.Context) error { return httpOK(ctx, hc, rp.url()+"/readyz", "") }); err != nil {
			return fmt.Errorf("replica %s: %w", rp.id, err)
		}
	}
	if cw.front, err = startFront(cw); err != nil {
		return err
	}
	w.gatewayURL = cw.front.url()
	w.log.Info("gateway replicas ready", "replicas", len(cw.replicas), "front", w.gatewayURL, "mode", f.Gateway.Mode, "redis", w.redisVersion)
	return nil
}

// stop ends the front, the replicas (SIGTERM together, so that none waits for the others'
// shards), then PostgreSQL. Safe to call more than once.
func (cw *clusterWorld) stop(log func(msg string, args ...any)) {
	if cw.front != nil {
		cw.front.close()
		cw.front = nil
	}
	cw.mu.Lock()
	reps := append([]*replica(nil), cw.replicas...)
	cw.mu.Unlock()
	var wg sync.WaitGroup
	for _, rp := range reps {
		if rp.child == nil {
			continue
		}
		c := rp.child
		if c.exited() {
			continue
		}
		_ = syscall.Kill(c.Pid(), syscall.SIGCONT) // a paused replica cannot stop
		wg.Go(func() {
			if err := c.stop(30 * time.Second); err != nil {
				log("gateway replica stop", "replica", c.name, "err", err)
			}
		})
	}
	wg.Wait()
	if cw.postgres != nil {
		_ = cw.postgres.stopWith(syscall.SIGINT, 10*time.Second) // fast shutdown
		cw.postgres = nil
	}
	if cw.pgDir != "" {
		_ = os.RemoveAll(cw.pgDir)
		cw.pgDir = ""
	}
}

// lookPostgres finds initdb and postgres on PATH or where Debian's packages put them.
func lookPostgres() (initdb, postgres string) {
	if i, err := exec.LookPath("initdb"); err == nil {
		if p, err := exec.LookPath("postgres"); err == nil {
			return i, p
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	for i := len(dirs) - 1; i >= 0; i-- {
		i2, p := filepath.Join(dirs[i], "initdb"), filepath.Join(dirs[i], "postgres")
		if isExec(i2) && isExec(p) {
			return i2, p
		}
	}
	return "", ""
}

// startPostgres runs a throw-away PostgreSQL server (initdb into a temporary folder, fsync off,
// trust on loopback; as the postgres user when the simulator runs as root, which PostgreSQL
// refuses) and returns the DSN of its database.
func startPostgres(ctx context.Context, logPath string) (c *child, dir, dsn, version string, err error) {
	initdb, postgres := lookPostgres()
	if initdb == "" {
		return nil, "", "", "", errors.New("PostgreSQL (initdb, postgres) is not installed")
	}
	if dir, err = os.MkdirTemp("", "wagate-sim-pg-"); err != nil {
		return nil, "", "", "", err
	}
	defer func() {
		if err != nil {
			if c != nil {
				_ = c.stopWith(syscall.SIGINT, 5*time.Second)
			}
			_ = os.RemoveAll(dir)
		}
	}()
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, dir, "", "", errors.New("running as root and there is no postgres user to run PostgreSQL as")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, dir, "", "", err
		}
	}
	data := filepath.Join(dir, "data")
	cmd := exec.CommandContext(ctx, initdb, "-D", data, "-U", "wagate", "--auth=trust", "--no-sync", "-E", "UTF8")
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, dir, "", "", fmt.Errorf("initdb: %w\n%s", err, out)
	}
	addr, err := freePort()
	if err != nil {
		return nil, dir, "", "", err
	}
	_, port, _ := strings.Cut(addr, ":")
	c, err = startChildAs("postgres", postgres, []string{"-D", data, "-p", port, "-k", dir, "-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off", "-c", "max_connections=400"}, nil, logPath, cred)
	if err != nil {
		return nil, dir, "", "", err
	}
	// pg_isready is not always installed: psql-free readiness is a TCP accept plus the server's log.
	if err := waitFor(ctx, c, 30*time.Second, func(ctx context.Context) error {
		b, _ := os.ReadFile(logPath)
		if !strings.Contains(string(b), "ready to accept connections") {
			return errors.New("not ready to accept connections yet")
		}
		return nil
	}); err != nil {
		return c, dir, "", "", err
	}
	version = "postgres"
	if out, err := exec.CommandContext(ctx, postgres, "--version").Output(); err == nil {
		version = strings.TrimSpace(string(out))
	}
	// The replicas create their tables in the server's default database (postgres).
	return c, dir, "postgres://wagate@" + addr + "/postgres?sslmode=disable", version, nil
}

// replicaFault plays a gateway fault on a cluster: kill, term or pause of one replica, or a
// rolling restart of all.
func (r *runner) replicaFault(ctx context.Context, flt scenario.Fault, w *FaultWindow) (func(context.Context) error, error) {
	cw := r.w.cluster
	p := flt.Process
	if p.Action == scenario.ProcessGatewayRollingRestart {
		return nil, r.rollingRestart(ctx, flt.Duration.Std(), w)
	}
	if p.Replica >= len(cw.replicas) {
		return nil, fmt.Errorf("no replica %d (the run started %d)", p.Replica, len(cw.replicas))
	}
	rp := cw.replicas[p.Replica]
	cw.mu.Lock()
	c, down := rp.child, rp.down
	cw.mu.Unlock()
	if down || c == nil || c.exited() {
		return nil, fmt.Errorf("replica %s is not running", rp.id)
	}
	switch p.Action {
	case scenario.ProcessGatewayPause:
		cw.setDown(rp, true, nil)
		if err := syscall.Kill(c.Pid(), syscall.SIGSTOP); err != nil {
			cw.setDown(rp, false, nil)
			return nil, fmt.Errorf("SIGSTOP replica %s pid %d: %w", rp.id, c.Pid(), err)
		}
		return func(ctx context.Context) error {
			defer cw.setDown(rp, false, nil)
			if err := syscall.Kill(c.Pid(), syscall.SIGCONT); err != nil {
				return fmt.Errorf("SIGCONT replica %s pid %d: %w", rp.id, c.Pid(), err)
			}
			w.Detail = fmt.Sprintf("SIGSTOP to replica %s pid %d for %s, then SIGCONT", rp.id, c.Pid(), time.Since(w.Start).Round(time.Millisecond))
			return nil
		}, nil
	case scenario.ProcessGatewayKill, scenario.ProcessGatewayTerm:
		sig := syscall.SIGKILL
		if p.Action == scenario.ProcessGatewayTerm {
			sig = syscall.SIGTERM
		}
		before := r.phones.OnlineJIDs()
		exited, note, err := r.stopReplica(ctx, rp, c, sig, w)
		if err != nil {
			return nil, err
		}
		if sig == syscall.SIGKILL {
			r.watchTakeover(flt, before, time.Now().Add(-exited))
		}
		return func(ctx context.Context) error {
			nc, took, err := r.restartReplica(ctx, rp, c)
			if err != nil {
				return err
			}
			w.End = time.Now()
			w.Detail = fmt.Sprintf("%s to replica %s pid %d (exited after %s)%s; restarted as pid %d after %s, ready %s later",
				sig, rp.id, c.Pid(), exited.Round(time.Millisecond), note, nc.Pid(), w.End.Add(-took).Sub(w.Start).Round(time.Millisecond), took.Round(time.Millisecond))
			r.log.Info("gateway replica restarted", "detail", w.Detail)
			return nil
		}, nil
	}
	return nil, fmt.Errorf("the gateway player has no action %q for a replica", p.Action)
}

// stopReplica takes rp out of the front's rotation, sends sig to its process c and waits for it
// to exit (SIGKILL after 40 s); the events it emitted are kept for the duplicates' count.
func (r *runner) stopReplica(ctx context.Context, rp *replica, c *child, sig syscall.Signal, w *FaultWindow) (exited time.Duration, note string, err error) {
	cw := r.w.cluster
	emitted, outbox := r.scrapeBeforeStop(ctx, func(ctx context.Context) (float64, float64) {
		return r.scrapeWithin(ctx, rp.url(), stopScrapeTimeout)
	})
	cw.setDown(rp, true, nil)
	r.proc.mu.Lock()
	r.proc.addStopped(emitted)
	r.proc.mu.Unlock()
	if w.OutboxBefore == 0 && w.EmittedBefore == 0 {
		w.EmittedBefore, w.OutboxBefore = emitted, outbox
	}
	start := time.Now()
	if err := c.cmd.Process.Signal(sig); err != nil {
		cw.setDown(rp, false, nil)
		return 0, "", fmt.Errorf("signal %s to replica %s: %w", sig, rp.id, err)
	}
	select {
	case <-c.done:
	case <-time.After(40 * time.Second):
		_ = syscall.Kill(-c.Pid(), syscall.SIGKILL)
		<-c.done
		note = "; did not exit within 40 s, killed"
	}
	return time.Since(start), note, nil
}

// restartReplica starts rp's process again (same id, address, stores), waits until it is ready
// (joined, first claims) and puts it back in the front's rotation.
func (r *runner) restartReplica(ctx context.Context, rp *replica, old *child) (*child, time.Duration, error) {
	start := time.Now()
	nc, err := restartChild(old)
	if err != nil {
		return nil, 0, err
	}
	r.w.cluster.setDown(rp, true, nc) // running again, not yet in rotation
	if err := waitFor(ctx, nc, 60*time.Second, func(ctx context.Context) error { return httpOK(ctx, r.hc, rp.url()+"/readyz", "") }); err != nil {
		return nc, 0, fmt.Errorf("restarted replica %s: %w", rp.id, err)
	}
	r.w.cluster.setDown(rp, false, nil)
	return nc, time.Since(start), nil
}

// rollingRestart restarts every replica in turn as a rolling update does: SIGTERM (the replica
// hands its shards over), exit, start again, ready, then pause before the next.
func (r *runner) rollingRestart(ctx context.Context, pause time.Duration, w *FaultWindow) error {
	cw := r.w.cluster
	var steps []string
	for i, rp := range cw.replicas {
		if i > 0 && pause > 0 {
			select {
			case <-time.After(pause):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		cw.mu.Lock()
		c := rp.child
		cw.mu.Unlock()
		if c == nil || c.exited() {
			return fmt.Errorf("replica %s is not running", rp.id)
		}
		exited, note, err := r.stopReplica(ctx, rp, c, syscall.SIGTERM, w)
		if err != nil {
			return err
		}
		nc, took, err := r.restartReplica(ctx, rp, c)
		if err != nil {
			return err
		}
		steps = append(steps, fmt.Sprintf("%s pid %d exited %s after SIGTERM%s, pid %d ready %s later", rp.id, c.Pid(), exited.Round(time.Millisecond), note, nc.Pid(), took.Round(time.Millisecond)))
		r.log.Info("rolling restart", "step", steps[len(steps)-1])
	}
	w.End = time.Now()
	w.Detail = "rolling restart: " + strings.Join(steps, "; ")
	return nil
}

// scrapeOne reads one replica's emitted-events counter and outbox length (-1 when unknown).
func (r *runner) scrapeOne(ctx context.Context, base string) (emitted, outbox float64) {
	return r.scrapeWithin(ctx, base, 2*time.Second)
}

// scrapeWithin is scrapeOne with its own bound.
func (r *runner) scrapeWithin(ctx context.Context, base string, bound time.Duration) (emitted, outbox float64) {
	sctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	p, err := scrape(sctx, r.hc, base+"/metrics", r.w.gatewayToken)
	if err != nil {
		return -1, -1
	}
	return p.eventsEmitted(), p.outboxDepth()
}

// scrapeReplicas sums the replicas' emitted events; the outbox is one stream they share, so its
// length is the largest any replica reports. -1 when a replica in rotation does not answer.
func (r *runner) scrapeReplicas(ctx context.Context) (emitted, outbox float64) {
	outbox = -1
	for _, rp := range r.w.cluster.up() {
		e, o := r.scrapeOne(ctx, rp.url())
		if e < 0 {
			return -1, -1
		}
		emitted += e
		outbox = max(outbox, o)
	}
	return emitted, outbox
}

// deadReplica is a replica process that exited without the simulator stopping it (nil: none).
func (cw *clusterWorld) deadReplica() *child {
	for _, c := range cw.children() {
		if c.exited() {
			return c
		}
	}
	return nil
}

// gatewayProcesses are the gateway processes the run measures: the replicas in rotation, or the
// one gateway (none during its planned restart).
func (r *runner) gatewayProcesses() []*child {
	if r.w.cluster != nil {
		return r.w.cluster.children()
	}
	if gw := r.gatewayChild(); gw != nil {
		return []*child{gw}
	}
	return nil
}

// gatewayRestarting reports whether the simulator has a gateway process (a replica) stopped or
// restarting on purpose.
func (r *runner) gatewayRestarting() bool {
	if r.w.cluster != nil {
		return r.w.cluster.anyDown()
	}
	return r.gatewayChild() == nil
}
