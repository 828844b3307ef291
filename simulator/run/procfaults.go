package run

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"wagate/simulator/scenario"
)

// FaultsFile is the run output listing every fault of the schedule with the time it was in effect
// (faults.json), for per-fault figures (benchmarks/cmd/faults-report).
const FaultsFile = "faults.json"

// FaultWindow is one fault of a run: when it began and when it ended. For process faults the
// end is measured (the process answers again); for the others it is the scheduled end.
type FaultWindow struct {
	Name string `json:"name"`
	// Kind is laravel, whatsapp or process; Action the WhatsApp or process action.
	Kind   string    `json:"kind"`
	Action string    `json:"action,omitempty"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	// Detail says what happened (e.g. "SIGKILL pid 123; restarted as pid 456 in 1.2s").
	Detail string `json:"detail,omitempty"`
	// Error is set when the fault could not be applied as asked.
	Error string `json:"error,omitempty"`
	// EmittedBefore is the gateway's emitted-events counter scraped just before it was stopped.
	EmittedBefore float64 `json:"emitted_before,omitempty"`
	// OutboxBefore is the outbox depth scraped just before the fault (undelivered events).
	OutboxBefore float64 `json:"outbox_before,omitempty"`
}

// FaultTimeline is the content of faults.json.
type FaultTimeline struct {
	// UsersStart is when the users started (fault times count from it).
	UsersStart time.Time     `json:"users_start"`
	Faults     []FaultWindow `json:"faults"`
}

// procControl is the runner's state for process faults: the gateway may be restarted, so every
// reader of the gateway child goes through it.
type procControl struct {
	mu sync.Mutex
	// down is true while a planned stop/restart of the gateway is under way.
	down bool
	// emitted sums the emitted-events counters of gateway processes that were stopped.
	emitted float64
	windows []FaultWindow
	aofOnce sync.Once
	aofErr  error
}

// gatewayChild returns the gateway process, or nil while a planned restart is under way (its
// exit is not a failure of the run).
func (r *runner) gatewayChild() *child {
	r.proc.mu.Lock()
	defer r.proc.mu.Unlock()
	if r.proc.down {
		return nil
	}
	return r.w.gateway
}

// emittedOffset is the events stopped gateway processes emitted before they stopped.
func (r *runner) emittedOffset() float64 {
	r.proc.mu.Lock()
	defer r.proc.mu.Unlock()
	return r.proc.emitted
}

func (r *runner) recordWindow(w FaultWindow) {
	r.proc.mu.Lock()
	r.proc.windows = append(r.proc.windows, w)
	r.proc.mu.Unlock()
}

// applyProcessFault plays a process fault: it prepares what the fault needs at the start of the
// run (AOF on redis-server), waits for the fault's time, stops the process and starts it again
// after the fault's duration.
func (r *runner) applyProcessFault(ctx context.Context, flt scenario.Fault) {
	p := flt.Process
	w := FaultWindow{Name: flt.Name, Kind: "process", Action: p.Action}
	if p.OnRedis() {
		if r.redisChild() == nil {
			w.Start, w.End = r.start.Add(flt.At.Std()), r.start.Add(flt.At.Std())
			w.Error = "no redis-server was started by this run (gateway.redis is not server, or none is installed); nothing done"
			r.log.Warn("fault", "name", flt.Name, "err", w.Error)
			r.recordWindow(w)
			return
		}
		if err := r.enableAOF(ctx); err != nil {
			w.Start, w.End = r.start.Add(flt.At.Std()), r.start.Add(flt.At.Std())
			w.Error = "turning AOF on: " + err.Error()
			r.log.Warn("fault", "name", flt.Name, "err", err)
			r.recordWindow(w)
			return
		}
	}
	select {
	case <-time.After(flt.At.Std() - time.Since(r.start)):
	case <-ctx.Done():
		return
	}
	// The restart must finish even when the users stop meanwhile.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute+flt.Duration.Std())
	defer cancel()
	r.log.Info("fault", "name", flt.Name, "process", p.Action, "downtime", flt.Duration)
	b := r.baseline(actx)
	var err error
	switch p.Action {
	case scenario.ProcessGatewayKill:
		err = r.restartGateway(actx, syscall.SIGKILL, flt.Duration.Std(), false, &w)
	case scenario.ProcessGatewayTerm:
		err = r.restartGateway(actx, syscall.SIGTERM, flt.Duration.Std(), true, &w)
	case scenario.ProcessRedisRestart:
		err = r.restartRedis(actx, false, flt.Duration.Std(), &w)
	case scenario.ProcessRedisLose:
		err = r.restartRedis(actx, true, flt.Duration.Std(), &w)
	case scenario.ProcessHostileClients:
		err = r.hostileFlood(actx, flt.Duration.Std(), &w)
	}
	if err != nil {
		w.Error = err.Error()
		r.log.Error("process fault", "name", flt.Name, "err", err)
	}
	if w.End.IsZero() {
		w.End = time.Now()
	}
	r.recordWindow(w)
	r.watchFrom(flt, b, w.End)
}

// scrapeGateway reads the emitted-events counter and outbox depth (-1 when unknown).
func (r *runner) scrapeGateway(ctx context.Context) (emitted, outbox float64) {
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	p, err := scrape(sctx, r.hc, r.w.gatewayURL+"/metrics", r.w.gatewayToken)
	if err != nil {
		return -1, -1
	}
	return p.eventsEmitted(), p.outboxDepth()
}

// restartGateway stops the gateway with sig (for SIGTERM, once a request to Laravel is in flight
// when duringFlush), waits for it to exit, waits downtime and starts it again with the same
// command, environment and stores, then waits until it is healthy.
func (r *runner) restartGateway(ctx context.Context, sig syscall.Signal, downtime time.Duration, duringFlush bool, w *FaultWindow) error {
	old := r.gatewayChild()
	if old == nil {
		return errors.New("no gateway process started by this run")
	}
	if old.exited() {
		return fmt.Errorf("the gateway had already exited: %v", old.err)
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
	emitted, outbox := r.scrapeGateway(ctx)
	r.proc.mu.Lock()
	r.proc.down = true
	if emitted > 0 {
		r.proc.emitted += emitted
	}
	r.proc.mu.Unlock()
	w.EmittedBefore, w.OutboxBefore = emitted, outbox
	w.Start = time.Now()
	if err := old.cmd.Process.Signal(sig); err != nil {
		r.markGatewayUp(old)
		return fmt.Errorf("signal %s: %w", sig, err)
	}
	select {
	case <-old.done:
	case <-time.After(40 * time.Second):
		_ = syscall.Kill(-old.Pid(), syscall.SIGKILL)
		<-old.done
		waited += "; did not exit within 40 s of SIGTERM, killed"
	}
	exitedAfter := time.Since(w.Start)
	select {
	case <-time.After(downtime):
	case <-ctx.Done():
	}
	nc, err := restartChild(old)
	if err != nil {
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
	if s, err := readProc(nc.Pid()); err == nil {
		r.mu.Lock()
		r.lastProc = s
		r.mu.Unlock()
	}
	r.markGatewayUp(nc)
	w.Detail = fmt.Sprintf("%s to pid %d (exited after %s)%s; restarted as pid %d, healthy %s after the signal",
		sig, old.Pid(), exitedAfter.Round(time.Millisecond), waited, nc.Pid(), w.End.Sub(w.Start).Round(time.Millisecond))
	r.log.Info("gateway restarted", "detail", w.Detail)
	return nil
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

// restartRedis kills redis-server (SIGKILL: a crash; AOF with appendfsync everysec has written
// every acknowledged command to the file before replying), optionally deletes its data (lose),
// waits downtime and starts it again on the same port with AOF on.
func (r *runner) restartRedis(ctx context.Context, lose bool, downtime time.Duration, w *FaultWindow) error {
	old := r.redisChild()
	if old.exited() {
		return fmt.Errorf("redis-server had already exited: %v", old.err)
	}
	_, w.OutboxBefore = r.scrapeGateway(ctx)
	w.Start = time.Now()
	_ = syscall.Kill(old.Pid(), syscall.SIGKILL)
	<-old.done
	removed := ""
	if lose {
		dir := redisDir(old.cmd.Args)
		if dir == "" {
			return errors.New("redis-server's --dir is unknown; refusing to delete anything")
		}
		var gone []string
		for _, name := range []string{"appendonlydir", "appendonly.aof", "dump.rdb"} {
			p := filepath.Join(dir, name)
			if _, err := os.Stat(p); err == nil {
				if err := os.RemoveAll(p); err != nil {
					return fmt.Errorf("delete redis data %s: %w", p, err)
				}
				gone = append(gone, name)
			}
		}
		removed = fmt.Sprintf("; deleted %v", gone)
	}
	select {
	case <-time.After(downtime):
	case <-ctx.Done():
	}
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
	r.proc.mu.Unlock()
	tl := FaultTimeline{UsersStart: r.start}
	for _, flt := range r.f.Faults {
		if w, ok := measured[flt.Name]; ok {
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
		if f.RetryAfter > 0 {
			p += " (Retry-After " + f.RetryAfter.String() + ")"
		}
		parts = append(parts, p)
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
