package whatsapp

import (
	"log/slog"

	signallog "go.mau.fi/libsignal/logger"
)

// signalLogger routes libsignal's log lines (module=libsignal) to the process's slog logger:
// errors and warnings as such, info at debug level, debug lines dropped (libsignal's own default
// also drops them, and prints the rest raw on stdout).
type signalLogger struct{}

func (signalLogger) Debug(caller, message string) {}
func (signalLogger) Info(caller, message string) {
	slog.Debug(message, "module", "libsignal", "caller", caller)
}
func (signalLogger) Warning(caller, message string) {
	slog.Warn(message, "module", "libsignal", "caller", caller)
}
func (signalLogger) Error(caller, message string) {
	slog.Error(message, "module", "libsignal", "caller", caller)
}
func (signalLogger) Configure(string) {}

// libsignal picks its logger lazily, on its first log call, without a lock: two sessions
// encrypting or signing at once raced on that write (the race detector reported it in a loaded
// smoke run's gateway). Setting it here, before any session exists, leaves nothing to pick.
func init() {
	var l signallog.Loggable = signalLogger{}
	signallog.Setup(&l)
}
