package run

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"wagate/internal/buildinfo"
	"wagate/internal/procstat"
	"wagate/reports"
	"wagate/simulator/floor"
	"wagate/simulator/metrics"
	"wagate/simulator/scenario"
	"wagate/simulator/user"
)

// FloorServeCommand is the simulator's subcommand that serves the floor (simulator/floor) in its
// own process: `simulator floor-serve -listen ADDR -size N`.
const FloorServeCommand = "floor-serve"

// RunFloor runs the scenario's status poll workload against the floor instead of the gateway:
// the floor runs as a child process on the gateway's CPU set (the scenario's cpus), the same
// number of pollers (users x pollers) poll it at the same interval for the scenario's duration,
// and report.json gives the floor's CPU (as gateway_cpu_percent: the process under test) and its
// requests (http_reqs), so the bench report can compare the CPU per API request.
func RunFloor(ctx context.Context, o Options) error {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f, err := scenario.Load(o.Scenario, o.Overrides)
	if err != nil {
		return err
	}
	logDir := filepath.Join(o.Out, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return fmt.Errorf("output folder: %w", err)
	}
	defer useCPUSets(f, log)()
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("floor: the simulator's own binary: %w", err)
	}
	addr, err := freePort()
	if err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	c, err := startChild("floor", self, []string{FloorServeCommand, "-listen", addr, "-size", strconv.Itoa(floor.StatusSize)}, nil, filepath.Join(logDir, "floor.log"))
	if err != nil {
		return err
	}
	defer c.stop(5 * time.Second)
	url := "http://" + addr + "/sessions/"
	hc := &http.Client{Timeout: 2 * time.Second}
	if err := waitFor(ctx, c, 15*time.Second, func(ctx context.Context) error { return pollOnce(ctx, hc, url+"ready") }); err != nil {
		return err
	}

	interval := time.Second
	for _, s := range f.Scenarios {
		interval = s.Model.StatusPollInterval.Std()
	}
	firsts := floorArrivals(f)
	pollers := len(firsts)
	conns := min(pollers, maxGatewayConns)
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		MaxConnsPerHost: conns, MaxIdleConns: conns, MaxIdleConnsPerHost: conns, IdleConnTimeout: 90 * time.Second,
	}}
	defer client.CloseIdleConnections()
	duration := f.ScheduledDuration()
	log.Info("floor: polling", "pollers", pollers, "interval", interval, "duration", duration, "addr", addr)

	start := time.Now()
	cpu0, _ := procstat.FS{}.Process(strconv.Itoa(c.Pid()))
	// The floor is polled by the users' own poll client (user.Poller), so the floor and the
	// gateway see the same requests from the same generator.
	reg := metrics.NewRegistry(nil)
	countRequests(func() float64 { return reg.Total("http_reqs", nil) }) // the generator's intervals (cpuset.go)
	api := user.NewAPI("http://"+addr, "floor", client, reg)
	// At the end each poller ends at its next poll time, without polling (Poller.Every's stop), as
	// the users' pollers do, within user.LazyEnd: not all 10,000 woken at once.
	stop := make(chan struct{})
	defer time.AfterFunc(time.Until(start.Add(duration)), func() { close(stop) }).Stop()
	pctx, cancel := context.WithDeadline(ctx, start.Add(duration+user.LazyEnd(interval)))
	defer cancel()
	var wg sync.WaitGroup
	launchPollers(pctx, start, firsts, func(i int, first time.Duration) {
		wg.Go(func() {
			p := api.NewPoller(pctx, user.EndpointStatus, "floor-"+strconv.Itoa(i), nil)
			defer p.Close()
			// Paced as the users' pollers are, by their own loop (user.Poller.Every).
			p.Every(pctx, 0, user.NewPace(interval, uint64(first), uint64(i)), stop)
		})
	})
	wg.Wait()
	end := time.Now()
	failedN := reg.Total("http_req_failed", nil)
	okN := reg.Total("http_reqs", nil) - failedN
	cpu1, err := procstat.FS{}.Process(strconv.Itoa(c.Pid()))
	if err != nil {
		return fmt.Errorf("floor's CPU: %w", err)
	}
	wall := end.Sub(start)
	cpuPercent := 100 * (cpu1.CPU - cpu0.CPU).Seconds() / wall.Seconds()
	cpuHist := reports.NewHistogram(0.01)
	if err := cpuHist.Record(cpuPercent); err != nil {
		return fmt.Errorf("floor's CPU %.2f%%: %w", cpuPercent, err)
	}
	env := reports.Environment{
		CPUModel: cpuModel(), Cores: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH,
		GatewayVersion: "floor (simulator/floor)", SimulatorVersion: buildinfo.String("simulator"), Start: start, End: end,
	}
	if h, err := os.Hostname(); err == nil {
		env.Hostname = h
	}
	describeCPUs(&env)
	// The floor's client latency: the same pollers, a server that does nothing, so what it shows
	// above the floor's own answer time is the generator's (its scheduling, its sink).
	polled := reg.Snapshot(wall, nil, []string{"endpoint"})
	statusDuration := reports.MetricHTTPReqDuration + "{endpoint:" + user.EndpointStatus + "}"
	rep := &reports.Report{
		SchemaVersion: reports.SchemaVersion,
		Label:         o.Label,
		Scenario:      reports.Scenario{Name: f.Name + " (floor)", File: f.Path, Users: int(f.PeakUsers()), Duration: reports.Duration(duration)},
		Configuration: reports.Configuration{Overrides: f.Overrides},
		Environment:   env,
		Metrics: map[string]reports.Metric{
			reports.MetricHTTPReqs:      reports.NewCounterMetric(okN, wall.Seconds()),
			reports.MetricHTTPReqFailed: reports.NewRateMetric(failedN, okN),
			reports.MetricGatewayCPU:    reports.NewTrendMetric("default", cpuHist),
		},
	}
	for _, name := range []string{reports.MetricHTTPReqDuration, statusDuration} {
		if m, ok := polled[name]; ok {
			rep.Metrics[name] = m
		}
	}
	log.Info("floor: done", "requests", okN, "failed", failedN, "cpu_percent", cpuPercent)
	return rep.Save(filepath.Join(o.Out, reports.FileName))
}

// launchPollers calls launch(i, firsts[i]) for each poller at its first poll (firsts: since
// start), in the order they come, from this goroutine, until ctx ends; it returns when every
// poller was launched or ctx ended. A poller's goroutine is born when it first polls, as a user's
// are when it arrives: creating all 10,000 of the floor's pollers at the start made 10,000
// goroutines runnable at once on the generator's one P, whose waits (21 ms at p99 in the first
// 5 s at cf218e8) were the whole run's p99 of its goroutine delays.
func launchPollers(ctx context.Context, start time.Time, firsts []time.Duration, launch func(i int, first time.Duration)) {
	order := make([]int, len(firsts))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(firsts[a], firsts[b]) })
	t := time.NewTimer(0)
	defer t.Stop()
	<-t.C
	for _, i := range order {
		if wait := time.Until(start.Add(firsts[i])); wait > 0 {
			t.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
		if ctx.Err() != nil {
			return
		}
		launch(i, firsts[i])
	}
}

// pollOnce GETs url and reads the whole answer, which must be a 200.
func pollOnce(ctx context.Context, hc *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("floor answered %s", resp.Status)
	}
	return nil
}

// floorArrivals is when each of the floor's pollers polls first: the scenario's users arrive as in
// a run (each after its behaviour's startDelay, drawn with the scenario's seed) and each starts
// its pollers spread over the status poll interval, as a user's pollers are. Before, all the
// floor's pollers started within the first interval while the gateway entry's users arrived over
// 45 s: 10,000 pollers dialing 4,000 connections in one second, a burst the gateway entry never
// had, inside the floor's latency and generator delays.
func floorArrivals(f *scenario.File) []time.Duration {
	rng := rand.New(rand.NewPCG(f.Seed, 0xf1002))
	var firsts []time.Duration
	for _, s := range f.Scenarios {
		interval := s.Model.StatusPollInterval.Std()
		for range s.Config.MaxVUsOf(nil) {
			arrive := s.Model.StartDelay.Sample(rng)
			for range *s.Model.Pollers {
				firsts = append(firsts, arrive+time.Duration(rng.Int64N(int64(interval)+1)))
			}
		}
	}
	return firsts
}
