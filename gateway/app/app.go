// Package app wires the gateway from a config.Config: the database, the whatsmeow driver, the
// Laravel client, the delivery chosen by mode (legacy, or batch with its outbox and cache), the
// session manager, metrics and the REST API server; and it runs them until its context ends,
// then shuts down gracefully within the configured deadline. gateway/cmd/gateway is a thin main
// around it; end-to-end tests run it in-process.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"time"

	"github.com/redis/go-redis/v9"

	"wagate/gateway/api"
	"wagate/gateway/config"
	"wagate/gateway/delivery"
	"wagate/gateway/delivery/legacy"
	"wagate/gateway/http1"
	"wagate/gateway/laravel"
	"wagate/gateway/metrics"
	"wagate/gateway/outbox"
	"wagate/gateway/sendonce"
	"wagate/gateway/session"
	"wagate/gateway/storage"
	"wagate/gateway/wadial"
	"wagate/gateway/whatsapp"
)

// App is a wired gateway.
type App struct {
	cfg config.Config
	log *slog.Logger

	db       *storage.DB
	registry *storage.Registry
	driver   *whatsapp.Driver
	client   *laravel.Client
	delivery delivery.Delivery
	manager  *session.Manager
	metrics  *metrics.Metrics
	// node is this replica's cluster membership (cluster mode; nil otherwise, cluster.go).
	node *clusterNode
	// journal keeps the message journal (batch mode; nil otherwise, journal.go).
	journal  *journalKeeper
	server   *http1.Server
	listener net.Listener
	// pprof serves net/http/pprof when cfg.PprofAddr is set (loopback only, off by default).
	pprof *http.Server

	// closers run last, in order, after the delivery is closed (mode-specific resources).
	closers []func(ctx context.Context) error
	// stoppingCleanly is set by Shutdown when the API and the session layer stopped without error.
	stoppingCleanly bool
}

// modeParts is what a delivery mode contributes to the wiring.
type modeParts struct {
	delivery delivery.Delivery
	activity delivery.ActivityChecker
	// readerFor, when set, wraps the session manager into the API's reader (batch: sessions
	// this gateway does not own are read through the cache); nil: the API reads the manager.
	readerFor func(local api.SessionReader) api.SessionReader
	routes    []api.Route
	// deadLetters serves the dead-letter admin routes (batch: the outbox; legacy: nil, 501).
	deadLetters api.DeadLetters
	// sendKeys keeps the answers of keyed sends (batch: Redis; legacy: the process).
	sendKeys sendonce.Store
	ready    []api.Check
	warnings []string
	closers  []func(ctx context.Context) error
	// redisData (batch) is the Redis data the outbox lives in: set when a loss of it must make
	// the sessions send their state again.
	redisData *redisData
	// sharedRedis (batch) is the Redis client cluster mode coordinates in.
	sharedRedis redis.UniversalClient
	// settle (batch) waits until the delivery's sends in progress are settled: a cluster
	// handover releases a shard only after it.
	settle func(context.Context) error
	// outbox (batch) keeps, in cluster mode, the entries of the shards this replica holds.
	outbox *outbox.Outbox
}

// redisData is the generation of the Redis data (the outbox marker) and the run of its server
// (outbox.Outbox.Run), the start's check of a restart since the run recorded, and how to watch
// the marker.
type redisData struct {
	generation func() int64
	run        func() int64
	// restartedSince reports a server restarted since the run recorded (taking the generation
	// of its new run: outbox.Outbox.RestartedSince).
	restartedSince func(ctx context.Context, run int64) (bool, error)
	// watch starts watching the marker; onLost runs when Redis lost its data (and the outbox).
	watch func(onLost func(generation int64))
}

// New wires a gateway from cfg (already validated) and binds its listen address, so every
// configuration and connection problem surfaces here, before Run.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (_ *App, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	a := &App{cfg: cfg, log: log, metrics: metrics.New()}
	defer func() {
		if err != nil {
			a.closeResources(context.Background())
		}
	}()

	dial, err := cfg.WhatsAppDial()
	if err != nil {
		return nil, err
	}
	var warnings []string
	if dial != nil {
		log.Warn("!!! "+wadial.Warning+" !!! This gateway does NOT talk to WhatsApp; never run it like this in production",
			"wa_dial", dial.Addr)
		warnings = append(warnings, wadial.Warning+" (WAGATE_WA_INSECURE_TEST=1, dialing "+dial.Addr+")")
	}
	if cfg.WATestKeepalive != 0 {
		warnings = append(warnings, whatsapp.TestKeepaliveWarning+" (WAGATE_WA_TEST_KEEPALIVE="+cfg.WATestKeepalive.String()+")")
	}

	a.db, err = storage.Open(ctx, storage.Options{DataDir: cfg.DataDir, DSN: cfg.StoreDSN})
	if err != nil {
		return nil, err
	}
	log.Info("store opened", "where", a.db.Where, "dialect", a.db.Dialect)
	a.registry = storage.NewRegistry(a.db, log)
	// A run that did not stop cleanly may have stored statuses whose events never reached the
	// delivery: the session layer then sends every restored status again.
	cleanBefore, err := a.registry.TakeCleanStop(ctx)
	if err != nil {
		return nil, err
	}
	// Read before the outbox reads the marker: a replica that records a new generation after
	// this read wrote it to the marker before (outbox.Outbox.RestartedSince).
	seen, err := a.registry.RedisSeen(ctx)
	if err != nil {
		return nil, err
	}
	if cfg.Mode == config.ModeBatch {
		a.journal = newJournalKeeper(a.db, cfg.Batch.JournalRetention, cfg.Batch.JournalSettledRetention, log)
		if cfg.Cluster {
			// A live loss another replica recorded: the shards this one claims replay too.
			if err := a.journal.loadLoss(ctx); err != nil {
				return nil, err
			}
		}
	}

	a.client, err = laravel.NewClient(laravel.ClientConfig{
		BaseURL:  cfg.LaravelURL,
		Token:    cfg.LaravelToken,
		Secret:   []byte(cfg.LaravelSecret),
		Timeout:  cfg.LaravelTimeout,
		Observer: a.metrics.LaravelObserver(),
	})
	if err != nil {
		return nil, err
	}

	var parts modeParts
	switch cfg.Mode {
	case config.ModeLegacy:
		parts = modeParts{delivery: a.metrics.ObserveDelivered(legacy.New(a.client)), activity: legacy.NewActivityChecker(a.client),
			sendKeys: sendonce.NewMemory(cfg.SendIdempotencyTTL)}
	case config.ModeBatch:
		parts, err = batchParts(ctx, cfg, a.client, a.metrics, a.journal, log)
		if err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("app: unknown mode %q", cfg.Mode)
	}
	a.delivery = parts.delivery
	a.closers = parts.closers
	// The outbox holds what the previous run handed over: if Redis lost its data since (the
	// marker's generation is not the one recorded), those events are gone, clean stop or not.
	// A Redis server restarted since (its run is not the one recorded) may have lost its last
	// writes with the marker intact: RestartedSince then moves the marker to that run's
	// generation, as a running gateway's keeper does, and the comparison below sees the loss.
	resync, redisLost := !cleanBefore, false
	if rd := parts.redisData; rd != nil {
		if _, err := rd.restartedSince(ctx, seen.Run); err != nil {
			return nil, err
		}
		if gen := rd.generation(); seen.Generation != gen {
			if seen.Generation != 0 {
				log.Warn("redis: its data is not the data this gateway last saw (lost, restarted, or another Redis): sending every session's status again",
					"seen", seen.Generation, "now", gen)
				redisLost = true
			}
			resync = true
		}
	}
	warnings = append(warnings, parts.warnings...)
	var clusterMetrics *metrics.ClusterMetrics
	if cfg.Cluster {
		clusterMetrics = a.metrics.RegisterCluster()
		if a.node, err = newClusterNode(ctx, cfg, parts.sharedRedis, clusterMetrics, log); err != nil {
			return nil, err
		}
		if parts.outbox != nil {
			parts.outbox.SetHolds(a.node.holds)
		}
		if parts.settle != nil {
			a.node.settle = parts.settle
		}
		if a.journal != nil {
			a.node.claimed = a.journal.replayClaimed
		}
		a.registry.SetOnFencedWrite(registryFenced(clusterMetrics))
		parts.ready = append(parts.ready, api.Check{Name: "cluster", Check: a.node.readyCheck})
		parts.routes = append(parts.routes, a.node.route())
	}
	parts.routes = append(parts.routes, drainRoute(a.node)) // outside cluster mode: 409

	waCfg := whatsapp.Config{DB: a.db, Dial: dial, Logger: log, Debug: cfg.WADebug, TestKeepalive: cfg.WATestKeepalive}
	if a.node != nil {
		waCfg.Holds = a.node.leaseHolds // a paused replica's decryption does not commit (decryptgate.go)
	}
	a.driver, err = whatsapp.New(ctx, waCfg)
	if err != nil {
		return nil, err
	}
	sessionCfg := cfg.SessionConfig()
	sessionCfg.ResyncRestored, sessionCfg.Logger, sessionCfg.Hooks = resync, log, a.metrics.SessionHooks()
	if a.node != nil {
		sessionCfg.Owner, sessionCfg.Hooks.FencedWrite = a.node, clusterMetrics.FencedWrite
	}
	if a.journal != nil {
		sessionCfg.Journal = a.journal.journal
	}
	a.manager, err = session.New(ctx, sessionCfg, a.driver, a.registry, a.delivery)
	if err != nil {
		return nil, err
	}
	if a.node != nil {
		a.node.manager, a.node.floor = a.manager, a.manager.Epoch()
	}
	a.metrics.RegisterSessions(a.manager.Counts)
	if rd := parts.redisData; rd != nil {
		// The messages and receipts the lost outbox held are in the journal: appended again (in
		// the background, retried) before the new generation is recorded, so a stop or a crash
		// before the replay went through replays again at the next start.
		record := func(now storage.RedisSeen) func(context.Context) {
			return func(ctx context.Context) {
				if err := a.registry.SetRedisSeen(ctx, now); err != nil {
					log.Warn("recording the new Redis generation failed; the next start sends every status again", "err", err)
				}
			}
		}
		now := storage.RedisSeen{Generation: rd.generation(), Run: rd.run()}
		if redisLost {
			// Every row, also in cluster mode: the loss is recorded once in the shared store, and
			// this replica holds no shard yet (the holders deliver what it appends).
			a.journal.replayInBackground(nil, time.Time{}, record(now))
		} else if err := a.registry.SetRedisSeen(ctx, now); err != nil {
			return nil, err
		}
		rd.watch(func(gen int64) {
			a.manager.ResyncAll()
			// Cluster mode: the rows of shards this replica claims later are appended then
			// (clusterNode.claimed), those of a shard held by nobody now included.
			a.journal.noteLoss(time.Now())
			a.journal.replayInBackground(a.heldSessions(), time.Time{}, record(storage.RedisSeen{Generation: gen, Run: rd.run()}))
		})
		a.journal.start()
	}

	var reader api.SessionReader = a.manager
	if parts.readerFor != nil {
		reader = parts.readerFor(reader)
	}
	ready := append([]api.Check{{Name: "store", Check: a.db.Ping}}, parts.ready...)
	handler, err := api.New(api.Config{
		Token:          cfg.APIToken,
		Sessions:       a.manager,
		Reader:         reader,
		Activity:       parts.activity,
		Metrics:        a.metrics.Handler(),
		ObserveRequest: a.metrics.ObserveAPI,
		Ready:          ready,
		Warnings:       warnings,
		Routes:         parts.routes,
		Logger:         log,
		RateLimit:      cfg.APIRateLimit(),
		DeadLetters:    parts.deadLetters,
		SendKeys:       parts.sendKeys,
		Locator:        a.locator(),
		// Registered in every mode, so the series exist (at 0) from the start.
		DeadLetterMetrics: a.metrics.RegisterDeadLetters(),
	})
	if err != nil {
		return nil, err
	}
	if cfg.PprofAddr != "" {
		if err := a.startPprof(cfg.PprofAddr); err != nil {
			return nil, err
		}
	}
	a.listener, err = net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("app: listen on %s: %w", cfg.Addr, err)
	}
	// The lean HTTP/1.1 path answers the polled reads; net/http (api.NewServer's limits and
	// timeouts) serves every other connection and bounds the lean ones too.
	a.server = &http1.Server{Fallback: api.NewServer(cfg.Addr, handler, log), Logger: log}
	return a, nil
}

// Addr returns the address the API listens on (useful with port 0).
func (a *App) Addr() string { return a.listener.Addr().String() }

// Run serves the API and restores the sessions of the previous run, until ctx ends or the server
// fails; then it shuts down within cfg.ShutdownTimeout: stop accepting and finish in-flight
// requests, disconnect every WhatsApp client (devices stay paired), let queued events reach the
// delivery, close the delivery (batch: one bounded final flush, the rest stays in the outbox),
// then the stores.
func (a *App) Run(ctx context.Context) error {
	// Restore loads the registry before the API serves (reconnects continue in the background),
	// so a request never races the restore. In cluster mode the sessions come with the shards
	// this replica claims (/readyz waits for the first claims).
	if a.node != nil {
		if err := a.node.start(ctx); err != nil {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.ShutdownTimeout)
			defer cancel()
			return errors.Join(err, a.Shutdown(sctx))
		}
	} else if err := a.manager.Restore(ctx); err != nil {
		a.log.Error("restoring sessions failed", "err", err)
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- a.server.Serve(a.listener) }()
	a.log.Info("gateway listening", "addr", a.Addr(), "mode", a.cfg.Mode)

	var runErr error
	select {
	case <-ctx.Done():
		a.log.Info("shutting down", "deadline", a.cfg.ShutdownTimeout)
	case err := <-serveErr:
		if !errors.Is(err, http.ErrServerClosed) {
			runErr = fmt.Errorf("app: API server: %w", err)
			a.log.Error("API server failed; shutting down", "err", err)
		}
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.ShutdownTimeout)
	defer cancel()
	return errors.Join(runErr, a.Shutdown(sctx))
}

// Shutdown stops everything within ctx's deadline (Run calls it).
func (a *App) Shutdown(ctx context.Context) error {
	start := time.Now()
	var errs []error
	if err := a.server.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("app: stop API server: %w", err))
	}
	if a.node != nil {
		a.node.stop() // no claims or handovers while the sessions close
	}
	if err := a.manager.Close(ctx); err != nil {
		errs = append(errs, err)
	}
	if a.journal != nil {
		a.journal.stop() // a replay under way goes on at the next start
	}
	if a.node != nil {
		// Every session's queued events reached the delivery and the registry is flushed. The
		// delivery closes first (its final flush sends what it holds of the shards still held),
		// so no batch is in flight when a successor may adopt the same entries: each is sent by
		// one holder. Then the shards go to the restarted replica (restart grace) or the others,
		// without waiting for the lease. (Close is idempotent; closeResources calls it again.)
		if a.delivery != nil {
			if err := a.delivery.Close(ctx); err != nil {
				errs = append(errs, fmt.Errorf("app: close delivery: %w", err))
			}
		}
		if err := a.node.leave(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	// A session whose latest state the delivery refused makes the stop unclean: the next start
	// sends every status again.
	a.stoppingCleanly = len(errs) == 0 && a.manager.Dirty() == 0
	errs = append(errs, a.closeResources(ctx))
	err := errors.Join(errs...)
	if err != nil {
		a.log.Warn("shutdown finished with errors", "took", time.Since(start).Round(time.Millisecond), "err", err)
	} else {
		a.log.Info("shutdown complete", "took", time.Since(start).Round(time.Millisecond))
	}
	return err
}

// closeResources closes the delivery, mode resources, the driver and the stores (whatever exists).
func (a *App) closeResources(ctx context.Context) error {
	var errs []error
	if a.journal != nil {
		a.journal.stop() // no replay appends to a closing delivery
	}
	if a.pprof != nil {
		_ = a.pprof.Close()
	}
	if a.delivery != nil {
		if err := a.delivery.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("app: close delivery: %w", err))
		}
	}
	for _, c := range a.closers {
		if err := c(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if a.driver != nil {
		a.driver.Close()
	}
	if a.registry != nil {
		if err := a.registry.Close(ctx); err != nil {
			errs = append(errs, err)
		}
		// Clean: every status the registry holds went to the delivery, which closed without
		// error. The next start then does not send them again.
		if a.stoppingCleanly && len(errs) == 0 {
			if err := a.registry.MarkCleanStop(ctx); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if a.db != nil {
		if err := a.db.Close(); err != nil {
			errs = append(errs, fmt.Errorf("app: close store: %w", err))
		}
	}
	if a.listener != nil && a.server == nil {
		_ = a.listener.Close()
	}
	return errors.Join(errs...)
}

// Sampling of the mutex and block profiles while pprof is served (off otherwise): one contended
// lock in 100, one blocking event per 100 µs spent blocked.
const (
	pprofMutexFraction = 100
	pprofBlockRate     = 100 * time.Microsecond
)

// startPprof serves the Go profiles on addr (validated as loopback by config), with the mutex
// and block profiles sampled.
func (a *App) startPprof(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("app: pprof listen on %s: %w", addr, err)
	}
	// The mutex and block profiles record nothing unless sampled: one contention event in
	// pprofMutexFraction, one blocking event per pprofBlockRate spent blocked.
	runtime.SetMutexProfileFraction(pprofMutexFraction)
	runtime.SetBlockProfileRate(int(pprofBlockRate))
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	a.pprof = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	a.log.Warn("serving Go profiles (pprof); keep this off in production unless debugging", "addr", ln.Addr().String())
	go func() { _ = a.pprof.Serve(ln) }()
	return nil
}
