package app_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"wagate/gateway/app"
	"wagate/gateway/config"
)

func baseConfig(t *testing.T) config.Config {
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.APIToken = apiToken
	cfg.LaravelURL = "http://127.0.0.1:1"
	cfg.LaravelToken = laravelToken
	cfg.DataDir = t.TempDir()
	cfg.ShutdownTimeout = 5 * time.Second
	return cfg
}

func TestNewFailsClearlyOnUnusableDependencies(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cases := map[string]func(*config.Config){
		"listen on":            func(c *config.Config) { c.Addr = ln.Addr().String() },
		"redisx":               func(c *config.Config) { c.Mode = config.ModeBatch; c.RedisURL = "redis://127.0.0.1:1/0" },
		"store DSN":            func(c *config.Config) { c.StoreDSN = "mysql://nope" },
		"WAGATE_API_TOKEN":     func(c *config.Config) { c.APIToken = "" },
		"WAGATE_LARAVEL_TOKEN": func(c *config.Config) { c.LaravelToken = "" },
		"WAGATE_REDIS_URL: required in batch mode": func(c *config.Config) { c.Mode = config.ModeBatch },
	}
	for want, mutate := range cases {
		cfg := baseConfig(t)
		mutate(&cfg)
		a, err := app.New(context.Background(), cfg, testLogger())
		if err == nil {
			_ = a.Shutdown(context.Background())
			t.Errorf("%s: New succeeded", want)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestRunStopsWithinTheDeadlineAndLeavesNothingBehind(t *testing.T) {
	cfg := baseConfig(t)
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	addr := a.Addr()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("the API still accepts connections after shutdown")
	}
	// The same data dir opens again (the store was closed cleanly).
	a, err = app.New(context.Background(), cfg, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}
