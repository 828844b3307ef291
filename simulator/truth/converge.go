package truth

import (
	"context"
	"errors"
	"time"
)

// ReadGateway asks the gateway for the final states of the sessions ids, each with the version of
// the session's latest QR or status event (GET /sessions/{id}'s version: the sequence Laravel's
// status_version and qr_version come from; messages and receipts are numbered apart). It returns
// nil when the gateway cannot answer at all; a session it could not read is missing from the map.
type ReadGateway func(ctx context.Context, ids []string) map[string]State

// convergePause is the pause between two rounds of Converge.
const convergePause = 250 * time.Millisecond

// Converge prepares a fair comparison: it reads every session's final state from the gateway, then
// observes Laravel (pollLaravel feeds ObserveLaravel) until every session has settled or limit
// passes. A session is unsettled while Laravel has yet to receive the gateway's state, while
// Laravel shows a newer state than the gateway's as read, or while the gateway's state is not what
// the simulation caused (a reconnect still in its backoff). Unsettled sessions are read from the
// gateway again each round, so a state the gateway reached after the first read is waited for and
// judged instead of an outdated view. It returns the gateway's states for Finish (nil when the
// gateway could not answer) and the last error of pollLaravel, if Laravel could not be read.
func (l *Ledger) Converge(ctx context.Context, readGateway ReadGateway, pollLaravel func(context.Context) error, limit time.Duration) (map[string]State, error) {
	gateway := readGateway(ctx, l.IDs())
	deadline := time.Now().Add(limit)
	for {
		err := pollLaravel(ctx)
		behind := l.unsettled(gateway)
		if len(behind) == 0 || !time.Now().Before(deadline) || ctx.Err() != nil {
			l.rereadOutdated(ctx, readGateway, gateway)
			if err != nil {
				err = errors.Join(err, ctx.Err())
			}
			return gateway, err
		}
		select {
		case <-ctx.Done():
			return gateway, errors.Join(err, ctx.Err())
		case <-time.After(min(convergePause, time.Until(deadline))):
		}
		for id, st := range readGateway(ctx, behind) {
			gateway[id] = st
		}
	}
}

// waitsFor reports whether Laravel, showing l (and QR version qrv), has yet to receive gateway
// state g: with versions on both sides, when it has no version as new as g's (Laravel holding a
// newer version with another state will never change: Judge calls that lost); without, when the
// states differ.
func waitsFor(l State, qrv int64, g State) bool {
	if reached := max(l.Version, qrv); g.Version > 0 && reached > 0 {
		return reached < g.Version
	}
	return l.Status != g.Status
}

// outdated reports whether gateway state g, read earlier, may be older than what Laravel already
// shows (l, QR version qrv): Laravel holds a newer version with another state, as when the gateway
// moved on (a QR flow expired, a reconnect) after it was read. Read again, a gateway whose version
// is still behind Laravel's went back (Judge calls that lost).
func outdated(l State, qrv int64, g State) bool {
	return g.Version > 0 && max(l.Version, qrv) > g.Version && l.Status != g.Status
}

// rereadOutdated reads the gateway once more, after the last poll of Laravel, for the sessions
// whose gateway state as read is older than what Laravel shows (outdated): the gateway's versions
// only grow and Laravel's came from it, so only a read made after Laravel showed the newer version
// proves that the gateway's versions went back. A session the gateway does not answer for then
// leaves the map and is judged without the gateway's view. Found in a 3000-user run on an
// overloaded machine: paired devices logged in between Converge's first read of the gateway
// (pending) and its last poll of Laravel (connected), re-reading 2,000 unsettled sessions took
// longer than the limit, and 133 sessions were called lost updates on a gateway read older than
// Laravel's.
func (l *Ledger) rereadOutdated(ctx context.Context, readGateway ReadGateway, gateway map[string]State) {
	if gateway == nil {
		return
	}
	var ids []string
	l.mu.Lock()
	for _, id := range l.order {
		s := l.sessions[id]
		if g, ok := gateway[id]; ok && outdated(s.laravel, s.laravelQRV, g) {
			ids = append(ids, id)
		}
	}
	l.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	fresh := readGateway(ctx, ids)
	for _, id := range ids {
		if st, ok := fresh[id]; ok {
			gateway[id] = st
		} else {
			delete(gateway, id)
		}
	}
}

// unsettled lists the sessions Converge waits for (nil without the gateway's view: then there is
// nothing to wait for).
func (l *Ledger) unsettled(gateway map[string]State) []string {
	if gateway == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, id := range l.order {
		s := l.sessions[id]
		g, ok := gateway[id]
		if !ok {
			continue
		}
		if waitsFor(s.laravel, s.laravelQRV, g) || outdated(s.laravel, s.laravelQRV, g) || !s.expectation().expects(g.Status) {
			out = append(out, id)
		}
	}
	return out
}
