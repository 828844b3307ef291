// Command gateway is the wagate gateway: WhatsApp sessions on whatsmeow, reported to a Laravel
// application in legacy or batch mode, behind a REST API. Run `gateway -help` for every setting.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"wagate/gateway/app"
	"wagate/gateway/config"
	"wagate/internal/buildinfo"
)

func main() {
	os.Exit(run())
}

func run() int {
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
	level, _ := cfg.SlogLevel()
	opts := &slog.HandlerOptions{Level: level}
	var handler slog.Handler = slog.NewTextHandler(os.Stderr, opts)
	if cfg.LogFormat == "json" {
		handler = slog.NewJSONHandler(os.Stderr, opts)
	}
	log := slog.New(handler)
	slog.SetDefault(log)
	log.Info("starting", "version", buildinfo.String("gateway"), "config", cfg)

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
