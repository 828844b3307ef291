package run

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"wagate/reports"
	"wagate/simulator/scenario"
)

// FaultsFile, FaultWindow and FaultTimeline are the report package's: faults.json is a run
// output that benchmarks/faultreport reads without importing the runner.
const FaultsFile = reports.FaultsFile

type (
	FaultWindow   = reports.FaultWindow
	FaultTimeline = reports.FaultTimeline
)

// procControl is the runner's state for process faults: the gateway may be restarted, so every
// reader of the gateway child goes through it.
type procControl struct {
	mu sync.Mutex
	// down is true while a planned stop/restart of the gateway is under way.
	down bool
	// emitted sums the emitted-events counters of gateway processes that were stopped;
	// emittedUnknown is set when one of them did not answer before it stopped (the sum is short
	// by its count, so the duplicates' count is unknown).
	emitted        float64
	emittedUnknown bool
	windows        []FaultWindow
	// recoveries are the measured recoveries by fault name.
	recoveries map[string]recovery
	aofOnce    sync.Once
	aofErr     error
	// held holds one token per process ("gateway", "redis") while a fault stops, restarts,
	// pauses or reconfigures it (hold): two such faults drawn over each other are played one
	// after the other.
	held map[string]chan struct{}
}

// The processes faults hold while they act on them (hold).
const (
	heldGateway = "gateway"
	heldRedis   = "redis"
)

// hold waits until no other fault acts on the named processes and takes them (always in the
// order given, gateway before redis, so two holders cannot wait on each other); release gives
// them back. Without it, a SIGTERM fault still scraping the gateway's metrics before its signal
// found the gateway SIGKILLed and restarted by a redis-restart-while-gateway-down drawn 3 s
// later, failed its signal and set the dead process back as the world's gateway: the restarted
// one was never stopped (chaos seed 1 schedule 161, an orphan gateway after the run); and a
// redis-evict drawn during another took the first one's pressure settings for Redis's own and
// put them back at its heal, leaving Redis refusing writes until the run ended (seed 1
// redis-evict schedule 1: 10 messages and 11 states lost).
func (r *runner) hold(ctx context.Context, fault string, procs ...string) (func(), error) {
	var taken []chan struct{}
	release := func() {
		for i := len(taken) - 1; i >= 0; i-- {
			<-taken[i]
		}
	}
	start := time.Now()
	for _, name := range procs {
		r.proc.mu.Lock()
		if r.proc.held == nil {
			r.proc.held = map[string]chan struct{}{}
		}
		ch := r.proc.held[name]
		if ch == nil {
			ch = make(chan struct{}, 1)
			r.proc.held[name] = ch
		}
		r.proc.mu.Unlock()
		select {
		case ch <- struct{}{}:
			taken = append(taken, ch)
		case <-ctx.Done():
			release()
			return nil, fmt.Errorf("waiting for another fault on the %s process to heal: %w", name, ctx.Err())
		}
	}
	if waited := time.Since(start); waited > 100*time.Millisecond {
		r.log.Info("fault waited for another fault on the same process to heal", "fault", fault, "processes", procs, "waited", waited.Round(time.Millisecond))
	}
	var once sync.Once
	return func() { once.Do(release) }, nil
}

// heldUntilHealed plays a fault that acts on the named processes while holding them (hold): they
// are released when inject fails or when the heal inject returned has run. Its window and
// duration start once it holds them.
func (r *runner) heldUntilHealed(ctx context.Context, w *FaultWindow, procs []string, inject func() (func(context.Context) error, error)) (func(context.Context) error, error) {
	release, err := r.hold(ctx, w.Name, procs...)
	if err != nil {
		return nil, err
	}
	w.Start = time.Now()
	heal, err := inject()
	if err != nil || heal == nil {
		release()
		return heal, err
	}
	return func(ctx context.Context) error {
		defer release()
		return heal(ctx)
	}, nil
}

// gatewayChild returns the gateway process, or nil while a planned restart is under way (its
// exit is not a failure of the run).
func (r *runner) gatewayChild() *child {
	if r.w.cluster != nil {
		return nil // replicas.go: gatewayProcesses, gatewayRestarting
	}
	r.proc.mu.Lock()
	defer r.proc.mu.Unlock()
	if r.proc.down {
		return nil
	}
	return r.w.gateway
}

// emittedOffset is the events stopped gateway processes emitted before they stopped; ok is
// false when one of them could not say.
func (r *runner) emittedOffset() (emitted float64, ok bool) {
	r.proc.mu.Lock()
	defer r.proc.mu.Unlock()
	return r.proc.emitted, !r.proc.emittedUnknown
}

// addStopped adds the emitted-events counter a gateway process showed before it was stopped
// (negative: it did not answer). Callers hold mu.
func (p *procControl) addStopped(emitted float64) {
	if emitted < 0 {
		p.emittedUnknown = true
		return
	}
	p.emitted += emitted
}

// stopScrapeAttempts and stopScrapeTimeout (each attempt's) bound scrapeBeforeStop.
const (
	stopScrapeAttempts = 3
	stopScrapeTimeout  = 5 * time.Second
)

// scrapeBeforeStop reads a gateway process's emitted-events counter and outbox length just before
// the simulator stops it, asking again when it does not answer: on a starved machine one 2 s
// scrape of a busy process fails, and its counter, lost with the process, made the duplicates'
// count (Laravel's applied events minus the emitted ones) 2008 too high in a 500-user
// cluster-failover run. -1 when it never answered.
func (r *runner) scrapeBeforeStop(ctx context.Context, scrape func(context.Context) (emitted, outbox float64)) (emitted, outbox float64) {
	for i := range stopScrapeAttempts {
		emitted, outbox = scrape(ctx)
		if emitted >= 0 || ctx.Err() != nil {
			return emitted, outbox
		}
		r.log.Warn("gateway metrics not answered before its stop; asking again", "attempt", i+1)
	}
	r.log.Warn("gateway metrics never answered before its stop: the duplicates' count will be unknown")
	return emitted, outbox
}

func (r *runner) recordWindow(w FaultWindow) {
	r.proc.mu.Lock()
	r.proc.windows = append(r.proc.windows, w)
	r.proc.mu.Unlock()
}

// scrapeGateway reads the emitted-events counter and outbox depth (-1 when unknown).
func (r *runner) scrapeGateway(ctx context.Context) (emitted, outbox float64) {
	if r.w.cluster != nil {
		return r.scrapeReplicas(ctx)
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	p, err := scrape(sctx, r.hc, r.w.gatewayURL+"/metrics", r.w.gatewayToken)
	if err != nil {
		return -1, -1
	}
	return p.eventsEmitted(), p.outboxDepth()
}

// gatewayPlayer stops the gateway process: SIGKILL (a crash) or SIGTERM (sent while a request to
// Laravel is in flight, so the shutdown's final flush meets the failure the schedule set) and
// starts it again with the same command, environment and stores after the fault's duration; or
// SIGSTOP for the fault's duration (a long GC pause), then SIGCONT.
type gatewayPlayer struct{ r *runner }

func (gatewayPlayer) Kind() string { return "gateway" }

func (p gatewayPlayer) Inject(ctx context.Context, flt scenario.Fault, w *FaultWindow) (func(context.Context) error, error) {
	r := p.r
	if r.w.cluster != nil {
		return r.replicaFault(ctx, flt, w) // replicas.go
	}
	return r.heldUntilHealed(ctx, w, []string{heldGateway}, func() (func(context.Context) error, error) { return p.inject(ctx, flt, w) })
}

func (p gatewayPlayer) inject(ctx context.Context, flt scenario.Fault, w *FaultWindow) (func(context.Context) error, error) {
	r := p.r
	switch flt.Process.Action {
	case scenario.ProcessGatewayPause:
		gw := r.gatewayChild()
		if gw == nil || gw.exited() {
			return nil, errors.New("no running gateway process to pause")
		}
		if err := syscall.Kill(gw.Pid(), syscall.SIGSTOP); err != nil {
			return nil, fmt.Errorf("SIGSTOP gateway pid %d: %w", gw.Pid(), err)
		}
		return func(context.Context) error {
			if err := syscall.Kill(gw.Pid(), syscall.SIGCONT); err != nil {
				return fmt.Errorf("SIGCONT gateway pid %d: %w", gw.Pid(), err)
			}
			w.Detail = fmt.Sprintf("SIGSTOP to gateway pid %d for %s, then SIGCONT", gw.Pid(), time.Since(w.Start).Round(time.Millisecond))
			return nil
		}, nil
	case scenario.ProcessGatewayKill:
		return r.stopGateway(ctx, syscall.SIGKILL, false, w)
	case scenario.ProcessGatewayTerm:
		return r.stopGateway(ctx, syscall.SIGTERM, true, w)
	}
	return nil, fmt.Errorf("the gateway player has no action %q", flt.Process.Action)
}

// stopGateway stops the gateway with sig (for SIGTERM, once a request to Laravel is in flight
// when duringFlush) and waits for it to exit; the heal it returns starts it again with the same
// command, environment and stores, and waits until it is healthy.
func (r *runner) stopGateway(ctx context.Context, sig syscall.Signal, duringFlush bool, w *FaultWindow) (func(context.Context) error, error) {
	old := r.gatewayChild()
	if old == nil {
		return nil, errors.New("no gateway process started by this run")
	}
	if old.exited() {
		return nil, fmt.Errorf("the gateway had already exited: %v", old.err)
	}
	waited := ""
	if duringFlush {
		d, err := r.waitLaravelBusy(ctx, 30*time.Second)
		if err != nil {
			waited = "; no request to Laravel seen in flight within 30 s (" + err.Error() + ")"
		} else {
			waited = fmt.Sprintf("; sent while a request to Laravel was in flight (waited %s)", d.Round(time.Millisecond))
		}
	}
	emitted, outbox := r.scrapeBeforeStop(ctx, func(ctx context.Context) (float64, float64) {
		return r.scrapeWithin(ctx, r.w.gatewayURL, stopScrapeTimeout)
	})
	r.proc.mu.Lock()
	r.proc.down = true
	r.proc.addStopped(emitted)
	r.proc.mu.Unlock()
	w.EmittedBefore, w.OutboxBefore = emitted, outbox
	w.Start = time.Now()
	if err := old.cmd.Process.Signal(sig); err != nil {
		r.markGatewayUp(old)
		return nil, fmt.Errorf("signal %s: %w", sig, err)
	}
	select {
	case <-old.done:
	case <-time.After(40 * time.Second):
		_ = syscall.Kill(-old.Pid(), syscall.SIGKILL)
		<-old.done
		waited += "; did not exit within 40 s of SIGTERM, killed"
	}
	exitedAfter := time.Since(w.Start)
	return func(ctx context.Context) error {
		nc, err := restartChild(old)
		if err != nil {
			r.markGatewayUp(old)
			return err
		}
		r.proc.mu.Lock()
		r.w.gateway = nc
		r.proc.mu.Unlock()
		if err := waitFor(ctx, nc, 60*time.Second, func(ctx context.Context) error { return httpOK(ctx, r.hc, r.w.gatewayURL+"/healthz", r.w.gatewayToken) }); err != nil {
			r.markGatewayUp(nc)
			return fmt.Errorf("restarted gateway: %w", err)
		}
		w.End = time.Now()
		r.markGatewayUp(nc)
		w.Detail = fmt.Sprintf("%s to pid %d (exited after %s)%s; restarted as pid %d, healthy %s after the signal",
			sig, old.Pid(), exitedAfter.Round(time.Millisecond), waited, nc.Pid(), w.End.Sub(w.Start).Round(time.Millisecond))
		r.log.Info("gateway restarted", "detail", w.Detail)
		return nil
	}, nil
}

// markGatewayUp ends the planned-restart state with c as the gateway process.
func (r *runner) markGatewayUp(c *child) {
	r.proc.mu.Lock()
	r.w.gateway = c
	r.proc.down = false
	r.proc.mu.Unlock()
}

// waitLaravelBusy waits until fakelaravel serves or queues a request (a flush is in flight).
func (r *runner) waitLaravelBusy(ctx context.Context, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	for time.Since(start) < limit {
		st, err := r.w.admin.GetStatsRecent(ctx, 0)
		if err == nil && (st.Workers.Busy > 0 || st.Workers.Queued > 0) {
			return time.Since(start), nil
		}
		select {
		case <-ctx.Done():
			return time.Since(start), ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return limit, errors.New("timed out")
}

// restartChild starts c's command again (same binary, arguments and environment), appending to
// its log.
func restartChild(c *child) (*child, error) {
	lf, err := os.OpenFile(c.log.Name(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s log: %w", c.name, err)
	}
	fmt.Fprintf(lf, "\n--- simulator: restarting %s at %s ---\n", c.name, time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(c.cmd.Path, c.cmd.Args[1:]...)
	cmd.Env = c.cmd.Env
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("restart %s: %w", c.name, err)
	}
	pinChild(c.name, cmd.Process.Pid)
	nc := &child{name: c.name, cmd: cmd, done: make(chan struct{}), log: lf}
	go func() {
		nc.err = cmd.Wait()
		lf.Close()
		close(nc.done)
	}()
	return nc, nil
}

// redisClient connects to the run's redis-server.
func (r *runner) redisClient() (*redis.Client, error) {
	opt, err := redis.ParseURL(r.w.redisURL)
	if err != nil {
		return nil, err
	}
	opt.MaxRetries = -1
	return redis.NewClient(opt), nil
}

// enableAOF turns AOF on in the running redis-server (appendfsync everysec, as production should
// run it) and waits for the initial rewrite, once per run.
func (r *runner) enableAOF(ctx context.Context) error {
	r.proc.aofOnce.Do(func() {
		rdb, err := r.redisClient()
		if err != nil {
			r.proc.aofErr = err
			return
		}
		defer rdb.Close()
		if err := rdb.ConfigSet(ctx, "appendfsync", "everysec").Err(); err != nil {
			r.proc.aofErr = err
			return
		}
		if err := rdb.ConfigSet(ctx, "appendonly", "yes").Err(); err != nil {
			r.proc.aofErr = err
			return
		}
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			info, err := rdb.Info(ctx, "persistence").Result()
			if err == nil && strings.Contains(info, "aof_enabled:1") && strings.Contains(info, "aof_rewrite_in_progress:0") && !strings.Contains(info, "aof_rewrite_scheduled:1") {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		r.proc.aofErr = errors.New("AOF rewrite did not finish within 30 s")
	})
	return r.proc.aofErr
}

// redisPlayer acts on the redis-server the run started: SIGKILL and a start on the same port
// and data folder after the fault's duration (restart: AOF keeps the data; lose: the data is
// deleted first), SIGSTOP for the duration (pause), or memory pressure with an evicting policy
// for the duration (evict). With the embedded miniredis there is no server to act on: the fault
// is skipped and says so.
type redisPlayer struct{ r *runner }

func (redisPlayer) Kind() string { return "redis" }

func (p redisPlayer) Inject(ctx context.Context, flt scenario.Fault, w *FaultWindow) (func(context.Context) error, error) {
	r := p.r
	if r.redisChild() == nil {
		return nil, errSkipped{"no redis-server was started by this run (gateway.redis is not server, or none is installed); nothing done"}
	}
	procs := []string{heldRedis}
	if flt.Process.Action == scenario.ProcessRedisRestartGatewayDown {
		procs = []string{heldGateway, heldRedis}
	}
	return r.heldUntilHealed(ctx, w, procs, func() (func(context.Context) error, error) { return p.inject(ctx, flt, w) })
}

func (p redisPlayer) inject(ctx context.Context, flt scenario.Fault, w *FaultWindow) (func(context.Context) error, error) {
	r := p.r
	rc := r.redisChild()
	if rc == nil {
		return nil, errors.New("redis-server is being restarted by another fault")
	}
	switch flt.Process.Action {
	case scenario.ProcessRedisRestart:
		return r.killRedis(ctx, false, w)
	case scenario.ProcessRedisLose:
		return r.killRedis(ctx, true, w)
	case scenario.ProcessRedisPause:
		if err := syscall.Kill(rc.Pid(), syscall.SIGSTOP); err != nil {
			return nil, fmt.Errorf("SIGSTOP redis-server pid %d: %w", rc.Pid(), err)
		}
		return func(context.Context) error {
			if err := syscall.Kill(rc.Pid(), syscall.SIGCONT); err != nil {
				return fmt.Errorf("SIGCONT redis-server pid %d: %w", rc.Pid(), err)
			}
			w.Detail = fmt.Sprintf("SIGSTOP to redis-server pid %d for %s, then SIGCONT", rc.Pid(), time.Since(w.Start).Round(time.Millisecond))
			return nil
		}, nil
	case scenario.ProcessRedisEvict:
		return r.pressRedis(ctx, w)
	case scenario.ProcessRedisRestartGatewayDown:
		return r.restartRedisWhileGatewayDown(ctx, w) // outage.go
	}
	return nil, fmt.Errorf("the redis player has no action %q", flt.Process.Action)
}

// Memory pressure of a redis-evict fault: maxmemory this far above the memory in use, and this
// much filler written (keys under redisFillerPrefix, removed at the heal).
const (
	redisPressureHeadroom = 256 << 10
	redisFillerKeys       = 256
	redisFillerSize       = 4 << 10
	redisFillerPrefix     = "wagate-sim:filler:"
)

// pressRedis sets maxmemory just above the memory in use with the allkeys-lru policy and writes
// filler, so that Redis evicts keys as a production Redis under pressure would; the heal restores
// the previous maxmemory and policy and removes the filler that is left.
func (r *runner) pressRedis(ctx context.Context, w *FaultWindow) (func(context.Context) error, error) {
	rdb, err := r.redisClient()
	if err != nil {
		return nil, err
	}
	prev, err := rdb.ConfigGet(ctx, "maxmemory*").Result()
	if err != nil {
		rdb.Close()
		return nil, fmt.Errorf("CONFIG GET maxmemory: %w", err)
	}
	used, err := redisUsedMemory(ctx, rdb)
	if err != nil {
		rdb.Close()
		return nil, err
	}
	keysBefore, _ := rdb.DBSize(ctx).Result()
	limit := used + redisPressureHeadroom
	if err := rdb.ConfigSet(ctx, "maxmemory-policy", "allkeys-lru").Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("CONFIG SET maxmemory-policy: %w", err)
	}
	if err := rdb.ConfigSet(ctx, "maxmemory", strconv.FormatInt(limit, 10)).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("CONFIG SET maxmemory: %w", err)
	}
	filler := strings.Repeat("x", redisFillerSize)
	refused := 0
	for i := range redisFillerKeys {
		if rdb.Set(ctx, fmt.Sprintf("%s%d", redisFillerPrefix, i), filler, 0).Err() != nil {
			refused++
		}
	}
	evicted, _ := redisStat(ctx, rdb, "evicted_keys")
	return func(ctx context.Context) error {
		defer rdb.Close()
		var errs []error
		for _, k := range []string{"maxmemory", "maxmemory-policy"} {
			if v, ok := prev[k]; ok {
				errs = append(errs, rdb.ConfigSet(ctx, k, v).Err())
			}
		}
		for i := range redisFillerKeys {
			_ = rdb.Del(ctx, fmt.Sprintf("%s%d", redisFillerPrefix, i)).Err()
		}
		after, _ := redisStat(ctx, rdb, "evicted_keys")
		w.Detail = fmt.Sprintf("maxmemory %d bytes (used %d) with allkeys-lru, %d KiB of filler (%d writes refused); %d keys before, %d evicted (INFO evicted_keys %d at the start); maxmemory %s and policy %s restored",
			limit, used, redisFillerKeys*redisFillerSize>>10, refused, keysBefore, after, evicted, prev["maxmemory"], prev["maxmemory-policy"])
		return errors.Join(errs...)
	}, nil
}

// redisUsedMemory is INFO memory's used_memory.
func redisUsedMemory(ctx context.Context, rdb *redis.Client) (int64, error) {
	v, err := redisInfoField(ctx, rdb, "memory", "used_memory")
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(v, 10, 64)
}

// redisStat is one INFO stats counter.
func redisStat(ctx context.Context, rdb *redis.Client, name string) (int64, error) {
	v, err := redisInfoField(ctx, rdb, "stats", name)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(v, 10, 64)
}

// redisInfoField reads one field of an INFO section.
func redisInfoField(ctx context.Context, rdb *redis.Client, section, field string) (string, error) {
	info, err := rdb.Info(ctx, section).Result()
	if err != nil {
		return "", fmt.Errorf("INFO %s: %w", section, err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("INFO %s has no %s", section, field)
}

// killRedis kills redis-server (SIGKILL: a crash; AOF with appendfsync everysec has written
// every acknowledged command to the file before replying) and optionally deletes its data (lose);
// the heal starts it again on the same port with AOF on.
func (r *runner) killRedis(ctx context.Context, lose bool, w *FaultWindow) (func(context.Context) error, error) {
	old := r.redisChild()
	if old.exited() {
		return nil, fmt.Errorf("redis-server had already exited: %v", old.err)
	}
	_, w.OutboxBefore = r.scrapeGateway(ctx)
	w.Start = time.Now()
	_ = syscall.Kill(old.Pid(), syscall.SIGKILL)
	<-old.done
	removed := ""
	if lose {
		dir := redisDir(old.cmd.Args)
		if dir == "" {
			return nil, errors.New("redis-server's --dir is unknown; refusing to delete anything")
		}
		var gone []string
		for _, name := range []string{"appendonlydir", "appendonly.aof", "dump.rdb"} {
			p := filepath.Join(dir, name)
			if _, err := os.Stat(p); err == nil {
				if err := os.RemoveAll(p); err != nil {
					return nil, fmt.Errorf("delete redis data %s: %w", p, err)
				}
				gone = append(gone, name)
			}
		}
		removed = fmt.Sprintf("; deleted %v", gone)
	}
	return func(ctx context.Context) error {
		args := append([]string(nil), old.cmd.Args...)
		for i := 1; i+1 < len(args); i++ {
			if args[i] == "--appendonly" {
				args[i+1] = "yes"
			}
		}
		args = append(args, "--appendfsync", "everysec")
		tmpl := &child{name: old.name, cmd: &exec.Cmd{Path: old.cmd.Path, Args: args, Env: old.cmd.Env}, log: old.log}
		nc, err := restartChild(tmpl)
		if err != nil {
			return err
		}
		r.proc.mu.Lock()
		r.w.redis = nc
		r.proc.mu.Unlock()
		rdb, err := r.redisClient()
		if err != nil {
			return err
		}
		defer rdb.Close()
		if err := waitFor(ctx, nc, 30*time.Second, func(ctx context.Context) error {
			// PING answers LOADING while the AOF is replayed; wait for a real answer.
			return rdb.Ping(ctx).Err()
		}); err != nil {
			return fmt.Errorf("restarted redis-server: %w", err)
		}
		w.End = time.Now()
		keys, _ := rdb.DBSize(ctx).Result()
		w.Detail = fmt.Sprintf("SIGKILL to redis-server pid %d%s; restarted as pid %d with AOF on, answering %s after the kill, %d keys",
			old.Pid(), removed, nc.Pid(), w.End.Sub(w.Start).Round(time.Millisecond), keys)
		r.log.Info("redis-server restarted", "detail", w.Detail)
		return nil
	}, nil
}

// redisDir finds the --dir argument of a redis-server command line.
func redisDir(args []string) string {
	for i := 1; i+1 < len(args); i++ {
		if args[i] == "--dir" {
			return args[i+1]
		}
	}
	return ""
}

// writeFaultTimeline writes faults.json: the scheduled windows of Laravel and WhatsApp faults
// and the measured windows of process faults, in schedule order.
func (r *runner) writeFaultTimeline() error {
	if len(r.f.Faults) == 0 {
		return nil
	}
	r.proc.mu.Lock()
	measured := map[string]FaultWindow{}
	for _, w := range r.proc.windows {
		measured[w.Name] = w
	}
	recovered := r.proc.recoveries
	r.proc.mu.Unlock()
	tl := FaultTimeline{UsersStart: r.start}
	for _, flt := range r.f.Faults {
		if w, ok := measured[flt.Name]; ok {
			if rc, ok := recovered[flt.Name]; ok {
				w.RecoveryMS, w.Recovered = float64(rc.took)/float64(time.Millisecond), rc.recovered
				w.SessionsBackMS = float64(rc.sessionsBack) / float64(time.Millisecond)
			}
			tl.Faults = append(tl.Faults, w)
			continue
		}
		w := FaultWindow{Name: flt.Name, Start: r.start.Add(flt.At.Std())}
		w.End = w.Start.Add(flt.Duration.Std())
		switch {
		case flt.Laravel != nil:
			w.Kind = "laravel"
			w.Detail = describeLaravelFaults(flt.Laravel)
		case flt.WhatsApp != nil:
			w.Kind, w.Action = "whatsapp", flt.WhatsApp.Action
			w.End = w.Start.Add(flt.WhatsApp.Spread.Std())
			if flt.WhatsApp.Share != nil {
				w.Detail = fmt.Sprintf("share %.2f", *flt.WhatsApp.Share)
			}
		case flt.Process != nil:
			w.Kind, w.Action = "process", flt.Process.Action
			w.Error = "not applied (the users stopped first)"
		}
		tl.Faults = append(tl.Faults, w)
	}
	b, err := json.MarshalIndent(tl, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(r.o.Out, FaultsFile), append(b, '\n'), 0o644)
}

// redisChild returns the run's redis-server process (nil when none was started).
func (r *runner) redisChild() *child {
	r.proc.mu.Lock()
	defer r.proc.mu.Unlock()
	return r.w.redis
}

// describeLaravelFaults renders the faults a schedule entry sets, e.g. "25% 503 (Retry-After 1s)".
func describeLaravelFaults(f *scenario.LaravelFaults) string {
	var parts []string
	if f.Down {
		parts = append(parts, "down (connections refused)")
	}
	if f.ErrorRate > 0 {
		status := f.ErrorStatus
		if status == 0 {
			status = 500
		}
		p := fmt.Sprintf("%g%% %d", f.ErrorRate*100, status)
		if f.RedirectTo != "" {
			p += " to " + f.RedirectTo
		}
		if f.RetryAfter > 0 {
			p += " (Retry-After " + f.RetryAfter.String() + ")"
		}
		parts = append(parts, p)
	}
	if f.BadBodyRate > 0 {
		parts = append(parts, fmt.Sprintf("%g%% of applied batches answered 2xx with an undecodable body", f.BadBodyRate*100))
	}
	if f.UnaccountedRate > 0 {
		parts = append(parts, fmt.Sprintf("%g%% of batches answered with failures they do not name", f.UnaccountedRate*100))
	}
	if len(f.RefuseSessions) > 0 {
		parts = append(parts, "items of "+strings.Join(f.RefuseSessions, ", ")+" refused item by item")
	}
	if f.ExtraLatency > 0 {
		parts = append(parts, "+"+f.ExtraLatency.String()+" per request")
	}
	if f.LostResponseRate > 0 {
		parts = append(parts, fmt.Sprintf("%g%% of applied writes lose their response", f.LostResponseRate*100))
	}
	if len(parts) == 0 {
		return "healthy"
	}
	return strings.Join(parts, ", ")
}
