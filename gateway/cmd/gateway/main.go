// Command gateway is the wagate gateway: WhatsApp sessions on whatsmeow, reported to a Laravel
// application in legacy or batch mode, behind a REST API. Run `gateway -help` for every setting.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"wagate/gateway/app"
	"wagate/gateway/config"
	"wagate/gateway/internal/sysmon"
	"wagate/internal/buildinfo"
	"wagate/internal/fdtable"
)

func main() {
	os.Exit(run())
}

// newLogger returns the gateway's logger: text or JSON (cfg.LogFormat) at cfg.LogLevel, with
// durations written the way people read them ("1.5s", not 1500000000 nanoseconds in JSON).
func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	level, _ := cfg.SlogLevel()
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: readableDuration}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// readableDuration renders duration attributes as Go duration strings.
func readableDuration(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
}

func run() int {
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		return healthcheck(os.Args[2:])
	}
	if len(os.Args) > 1 && os.Args[1] == "drain" {
		return drain(os.Args[2:])
	}
	loaded, err := config.Load(config.Options{Args: os.Args[1:]})
	switch {
	case errors.Is(err, config.ErrHelp):
		return 0
	case err != nil:
		fmt.Fprintf(os.Stderr, "gateway: invalid configuration:\n%v\n", err)
		return 2
	case loaded.Version:
		fmt.Println(buildinfo.String("gateway"))
		return 0
	}
	cfg := loaded.Config
	var reexecErr error
	if cfg.SteadySysmon {
		reexecErr = sysmon.Reexec() // returns only when GODEBUG already has it, or on failure
	}
	log := newLogger(cfg, os.Stderr)
	slog.SetDefault(log)
	log.Info("starting", "version", buildinfo.String("gateway"), "config", cfg)
	if reexecErr != nil {
		log.Warn("the Go runtime's system monitor keeps its default deep sleep", "err", reexecErr)
	}
	// Each session's WhatsApp connection and each client's API connection is a descriptor: the
	// table is made its final size now, not doubled (a stall of each time) as sessions connect.
	if _, err := fdtable.Reserve(fdtable.Max); err != nil {
		log.Warn("the descriptor table will grow as connections open", "err", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	if err := a.Run(ctx); err != nil {
		log.Error("stopped with errors", "err", err)
		return 1
	}
	return 0
}
