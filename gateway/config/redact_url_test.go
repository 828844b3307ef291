package config

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// Defect 10: credentials in WAGATE_LARAVEL_URL (user:pass@host, a token in the query) were
// printed in the start-up log line (gateway/cmd/gateway logs "config", cfg) and in the
// validation error.
func TestTheStartUpLogAndErrorsNeverPrintTheLaravelURLsCredentials(t *testing.T) {
	cfg := Default()
	cfg.LaravelURL = "https://gateway:hunter2@app.example.com/?api_token=leaked"
	var out bytes.Buffer
	slog.New(slog.NewJSONHandler(&out, nil)).Info("starting", "config", cfg)
	logged := out.String()
	for _, secret := range []string{"hunter2", "leaked", "gateway:"} {
		if strings.Contains(logged, secret) {
			t.Fatalf("the start-up log prints %q: %s", secret, logged)
		}
	}
	if !strings.Contains(logged, "app.example.com") {
		t.Fatalf("the start-up log no longer names the Laravel host: %s", logged)
	}

	cfg.LaravelURL = "ftp://gateway:hunter2@app.example.com/"
	if err := cfg.Validate(); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("Validate: %v; want an error without the password", err)
	}
}
