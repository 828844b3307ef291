package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"wagate/gateway/config"
)

func TestLogsWriteDurationsForPeople(t *testing.T) {
	cases := []struct {
		format string
		want   []string
	}{
		{"json", []string{`"took":"1.5s"`, `"deadline":"20s"`, `"group":{"wait":"250ms"}`, `"n":3`}},
		{"text", []string{"took=1.5s", "deadline=20s", "group.wait=250ms", "n=3"}},
	}
	for _, tc := range cases {
		var buf bytes.Buffer
		cfg := config.Default()
		cfg.LogFormat = tc.format
		newLogger(cfg, &buf).Info("done", "took", 1500*time.Millisecond, "deadline", 20*time.Second,
			slog.Group("group", "wait", 250*time.Millisecond), "n", 3)
		for _, w := range tc.want {
			if !strings.Contains(buf.String(), w) {
				t.Errorf("%s: %q lacks %s", tc.format, buf.String(), w)
			}
		}
	}
}

func TestLogLevelIsTheConfigured(t *testing.T) {
	var buf bytes.Buffer
	cfg := config.Default()
	cfg.LogLevel = "warn"
	log := newLogger(cfg, &buf)
	log.Info("hidden")
	log.Warn("shown")
	if strings.Contains(buf.String(), "hidden") || !strings.Contains(buf.String(), "shown") {
		t.Fatalf("%q", buf.String())
	}
}
