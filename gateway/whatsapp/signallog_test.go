package whatsapp

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"go.mau.fi/libsignal/ecc"
	signallog "go.mau.fi/libsignal/logger"
)

// libsignal's logger is set before any session runs, so its first log calls from many sessions
// at once read it without writing it (under -race, a lazy pick of the default logger is a data
// race), and its warnings reach the process's slog logger instead of raw lines on stdout.
func TestLibsignalLogsThroughSlogWithoutPickingALoggerLazily(t *testing.T) {
	if _, ok := signallog.Logger.(signalLogger); !ok {
		t.Fatalf("libsignal's logger is %T, want the gateway's signalLogger set at init", signallog.Logger)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			kp, err := ecc.GenerateKeyPair()
			if err != nil {
				t.Error(err)
				return
			}
			ecc.CalculateSignature(kp.PrivateKey(), []byte("a pairing's signed prekey")) // logs at debug level
		})
	}
	wg.Wait()

	var buf bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	defer slog.SetDefault(prev)
	signallog.Warning("untrusted identity")
	if got := buf.String(); !strings.Contains(got, "untrusted identity") || !strings.Contains(got, "module=libsignal") || !strings.Contains(got, "level=WARN") {
		t.Errorf("libsignal's warning logged as %q, want a slog WARN line with module=libsignal", got)
	}
}
