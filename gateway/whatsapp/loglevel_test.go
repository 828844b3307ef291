package whatsapp

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// A routine WhatsApp drop or failed reconnect is a WARN line; any other whatsmeow error stays ERROR.
func TestWhatsmeowErrorLevels(t *testing.T) {
	cases := []struct {
		msg  string
		want slog.Level
	}{
		{"Error reading from websocket: failed to get reader: failed to read frame header: EOF", slog.LevelWarn},
		{"Error reconnecting after autoreconnect sleep: dial tcp: connection refused", slog.LevelWarn},
		{"Initial connection failed but reconnecting in background (dial tcp: i/o timeout)", slog.LevelWarn},
		{"Failed to reconnect after 515 code: EOF", slog.LevelWarn},
		{"Failed to get number of prekeys in database: database is locked", slog.LevelError},
		{"Event handler panicked while handling a *events.Message: boom", slog.LevelError},
		{"Unknown stream error: <stream:error/>", slog.LevelError},
		{"Client outdated (405) connect failure (client version: 2.3000)", slog.LevelError},
		{"error reading from websocket", slog.LevelError}, // not whatsmeow's wording: not assumed routine
	}
	for _, tc := range cases {
		if got := errorLevel(tc.msg); got != tc.want {
			t.Errorf("%q: %v, want %v", tc.msg, got, tc.want)
		}
	}
}

func TestAdapterLogsRoutineDropsAtWarn(t *testing.T) {
	var buf bytes.Buffer
	a := &slogAdapter{log: slog.New(slog.NewTextHandler(&buf, nil)), module: "whatsmeow"}
	a.Sub("s1").Sub("Socket").Errorf("Error reading from websocket: %v", "EOF")
	a.Errorf("Failed to get number of prekeys in database: %v", "locked")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "level=WARN") || !strings.Contains(lines[0], "module=whatsmeow/s1/Socket") ||
		!strings.Contains(lines[1], "level=ERROR") {
		t.Fatalf("log:\n%s", buf.String())
	}
}
