package user

import (
	"errors"
	"slices"
	"syscall"
)

// Forget removes session id from the ledger: its start request never reached the gateway (the
// gateway was down), so the session does not exist anywhere and has no state to compare.
func (l *Ledger) Forget(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.sessions[id]; !ok {
		return
	}
	delete(l.sessions, id)
	if i := slices.Index(l.order, id); i >= 0 {
		l.order = slices.Delete(l.order, i, i+1)
	}
}

// unreached reports whether a request failed before the gateway could have seen it (connection
// refused: the gateway process is not running).
func unreached(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED)
}
