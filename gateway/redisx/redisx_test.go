package redisx

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"wagate/internal/redistest"
)

func TestOpenWithoutURLEmbedsMiniredisAndSaysSo(t *testing.T) {
	var logs bytes.Buffer
	c, err := Open(context.Background(), "", slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.Embedded {
		t.Fatal("Embedded = false without a URL")
	}
	if !strings.Contains(logs.String(), "EMBEDDED miniredis") || !strings.Contains(logs.String(), "no persistence") {
		t.Fatalf("log does not warn about the embedded mode: %s", logs.String())
	}
	reason, err := c.Ready(context.Background())
	if err != nil || reason != EmbeddedReason {
		t.Fatalf("Ready = %q, %v; want %q", reason, err, EmbeddedReason)
	}
}

func TestOpenWithURLConnectsToRealRedis(t *testing.T) {
	b := redistest.Real(t)
	c, err := Open(context.Background(), b.URL(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Embedded {
		t.Fatal("Embedded = true with a URL")
	}
	if reason, err := c.Ready(context.Background()); err != nil || reason != "redis: ok" {
		t.Fatalf("Ready = %q, %v", reason, err)
	}
	b.Real.Stop()
	if _, err := c.Ready(context.Background()); err == nil {
		t.Fatal("Ready succeeded with the server stopped")
	}
}

func TestOpenFailsOnUnreachableURL(t *testing.T) {
	if _, err := Open(context.Background(), "redis://127.0.0.1:1", slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("Open succeeded against a closed port")
	}
}
