package main

import (
	"context"
	"flag"
	"log/slog"

	"wagate/simulator/k6/js"
	"wagate/simulator/metrics"
)

// worldFlags are the flags that give k6/x/wagate its world.
type worldFlags struct{}

func registerWorldFlags(*flag.FlagSet) *worldFlags { return &worldFlags{} }

type k6Extensions struct {
	modules       map[string]js.ModuleFactory
	afterTeardown func(context.Context, *metrics.Registry) error
}

func (w *worldFlags) extensions(context.Context, *slog.Logger) (k6Extensions, func(), error) {
	return k6Extensions{}, func() {}, nil
}
