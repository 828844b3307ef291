package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"wagate/simulator/executor"
	"wagate/simulator/k6/js"
	"wagate/simulator/k6/options"
	"wagate/simulator/k6/wagate"
	"wagate/simulator/k6/wagate/wagatejs"
	"wagate/simulator/metrics"
	simrun "wagate/simulator/run"
)

// worldFlags are the flags that give k6/x/wagate its world: a scenario YAML whose world the
// runner starts and stops (as `run SCENARIO.yaml` does), or external parts.
type worldFlags struct {
	world, bin, gateway, laravel, fakewaControl string
	sets                                        repeated
}

func registerWorldFlags(fs *flag.FlagSet) *worldFlags {
	w := &worldFlags{}
	fs.StringVar(&w.world, "world", "", "scenario YAML whose world (gateway, fakelaravel, fakewa, Redis) k6/x/wagate drives (default: options.ext.wagate.world)")
	for _, n := range []string{"world-set", "set"} {
		fs.Var(&w.sets, n, "override a field of the world's scenario, e.g. -set gateway.mode=legacy (repeatable)")
	}
	fs.StringVar(&w.bin, "bin", "", "folder with the fakelaravel and gateway binaries (default: next to this binary, then PATH)")
	fs.StringVar(&w.gateway, "gateway", "", "use this running gateway instead of starting one; its token from $WAGATE_API_TOKEN")
	fs.StringVar(&w.laravel, "laravel", "", "use this running fakelaravel; tokens from $FAKELARAVEL_TOKEN and $FAKELARAVEL_ADMIN_TOKEN")
	fs.StringVar(&w.fakewaControl, "fakewa-control", "", "use this running fakewa (its control API, host:port)")
	return w
}

type k6Extensions struct {
	modules       map[string]js.ModuleFactory
	metrics       map[string]string
	beforeSetup   func(context.Context, *metrics.Registry, options.Options) error
	onLoadStart   func(context.Context)
	onLoadEnd     func(context.Context)
	afterTeardown func(context.Context, *metrics.Registry) error
}

// extensions builds k6/x/wagate for a run of script; logDir receives the world's logs (a
// temporary folder when empty). The returned stop ends the world, if one was started.
func (w *worldFlags) extensions(script, logDir string, log *slog.Logger) (k6Extensions, func(), error) {
	ext := &wagatejs.Extension{}
	var mu sync.Mutex
	var world *simrun.DriverWorld
	var tmp string
	stop := func() {
		mu.Lock()
		defer mu.Unlock()
		if world != nil {
			world.Stop()
		}
		if tmp != "" {
			_ = os.RemoveAll(tmp)
		}
	}
	before := func(ctx context.Context, reg *metrics.Registry, o options.Options) error {
		settings, err := wagatejs.Settings(o)
		if err != nil {
			return err
		}
		path := w.world
		if path == "" && settings.World != "" {
			path = settings.World
			if !filepath.IsAbs(path) {
				path = filepath.Join(filepath.Dir(script), path)
			}
		}
		if path == "" {
			return nil // no world: k6/x/wagate calls fail naming the flag
		}
		out := logDir
		if out == "" {
			if tmp, err = os.MkdirTemp("", "wagate-k6-world-"); err != nil {
				return err
			}
			out = tmp
		}
		d, err := simrun.StartDriverWorld(ctx, simrun.Options{
			Scenario: path, Overrides: append(settings.Set, w.sets...), Out: out, BinDir: w.bin, Logger: log,
			Gateway: w.gateway, GatewayToken: os.Getenv("WAGATE_API_TOKEN"),
			Laravel: w.laravel, LaravelToken: os.Getenv("FAKELARAVEL_TOKEN"), LaravelAdminToken: os.Getenv("FAKELARAVEL_ADMIN_TOKEN"),
			FakewaControl: w.fakewaControl,
		}, reg)
		if err != nil {
			return fmt.Errorf("k6/x/wagate world %s: %w", path, err)
		}
		mu.Lock()
		world = d
		mu.Unlock()
		ext.SetDriver(wagate.New(d, segmentIndex(o)))
		return nil
	}
	begin := func(ctx context.Context) {
		mu.Lock()
		d := world
		mu.Unlock()
		if d != nil {
			d.Begin(ctx)
		}
	}
	end := func(ctx context.Context) {
		mu.Lock()
		d := world
		mu.Unlock()
		if d != nil {
			d.End(ctx)
		}
	}
	after := func(ctx context.Context, _ *metrics.Registry) error {
		mu.Lock()
		started := world != nil
		mu.Unlock()
		if !started {
			return nil
		}
		t, err := ext.GroundTruth(ctx)
		if err != nil {
			return err
		}
		log.Info("ground truth", "sessions", t.Sessions, "lost_updates", t.LostUpdates, "stale_overwrites", t.StaleOverwrites, "duplicate_applications", t.DuplicateApplications)
		return nil
	}
	return k6Extensions{
		modules:       map[string]js.ModuleFactory{wagatejs.ModuleName: ext.Module},
		metrics:       ext.Metrics(),
		beforeSetup:   before,
		onLoadStart:   begin,
		onLoadEnd:     end,
		afterTeardown: after,
	}, stop, nil
}

// segmentIndex is this instance's index in its execution-segment sequence (0 alone), so the
// session ids and phone numbers of instances sharing a world never collide.
func segmentIndex(o options.Options) int {
	if o.ExecutionSegment == nil {
		return 0
	}
	seq := ""
	if o.ExecutionSegmentSequence != nil {
		seq = *o.ExecutionSegmentSequence
	}
	seg, err := executor.ParseSegment(*o.ExecutionSegment)
	if err != nil {
		return 0
	}
	sq, err := executor.ParseSequence(seq)
	if err != nil {
		return 0
	}
	t, err := executor.NewTuple(seg, sq)
	if err != nil {
		return 0
	}
	return t.Index()
}
