package main

import (
	"fmt"
	"strings"
	"sync"

	waLog "go.mau.fi/whatsmeow/util/log"
)

// clientTrail keeps the last warnings and errors a whatsmeow client logged and the events it
// emitted, so a client that fails under load can be explained without logging every client.
type clientTrail struct {
	mu     sync.Mutex
	lines  []string
	events []string
}

const trailLength = 8

func (t *clientTrail) add(list *[]string, line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(*list) == trailLength {
		copy(*list, (*list)[1:])
		*list = (*list)[:trailLength-1]
	}
	*list = append(*list, line)
}

func (t *clientTrail) event(evt any) { t.add(&t.events, fmt.Sprintf("%T", evt)) }

// String renders the trail for an error message.
func (t *clientTrail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return fmt.Sprintf("events [%s] log [%s]", strings.Join(t.events, " "), strings.Join(t.lines, " | "))
}

// trailLogger is a waLog.Logger that records warnings and errors into a clientTrail.
type trailLogger struct {
	trail  *clientTrail
	module string
}

var _ waLog.Logger = trailLogger{}

func (l trailLogger) Warnf(msg string, args ...any) {
	l.trail.add(&l.trail.lines, "WARN "+l.module+": "+fmt.Sprintf(msg, args...))
}

func (l trailLogger) Errorf(msg string, args ...any) {
	l.trail.add(&l.trail.lines, "ERROR "+l.module+": "+fmt.Sprintf(msg, args...))
}

func (l trailLogger) Infof(string, ...any)  {}
func (l trailLogger) Debugf(string, ...any) {}

func (l trailLogger) Sub(module string) waLog.Logger {
	return trailLogger{trail: l.trail, module: l.module + "/" + module}
}
