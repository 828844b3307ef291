package app

import (
	"context"

	"wagate/gateway/session"
)

// Manager returns the session manager.
func (a *App) Manager() *session.Manager { return a.manager }

// Kill stops a cluster replica the way SIGKILL does, as far as the others can tell: its lease is
// no longer renewed (it expires after the TTL; nothing is released), its WhatsApp clients close
// without anything reported. (Its API keeps answering: closing the server would start Run's
// shutdown, which leaves the cluster.) Shutdown still frees the rest.
func (a *App) Kill() {
	a.node.stop()
	_, _ = a.manager.Drop(context.Background(), func(string) bool { return true }, false)
}

// Zombify stops a cluster replica's lease renewals and rebalancer and nothing else: it still
// believes it holds its shards and runs their sessions, like a process whose renewals hang
// while the rest of it runs (a zombie its renew deadline did not stop). Its lease expires and
// another replica takes the shards over.
func (a *App) Zombify() { a.node.stop() }
