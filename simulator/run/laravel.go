package run

import (
	"context"
	"sync"
	"time"

	"wagate/fakelaravel"
	"wagate/simulator/truth"
)

// laravelWatch polls fakelaravel's change feed (/_fake/state?since=N): it is what the Laravel
// app's pages show (the QR a person scans) and it feeds the ledger with every change it sees. Each
// poll reads only the sessions changed since the previous one (a full snapshot at first, after a
// reset, and always in front of a real Laravel app, which has no feed): at 10,000 sessions the
// whole state was 5 MB and a third of a second per read.
type laravelWatch struct {
	admin  *fakelaravel.AdminClient
	ledger *truth.Ledger
	// polling serializes whole polls (read, compare, feed the ledger): two polls that overlapped
	// could feed an older read after a newer one, which the ledger would take for a stale write.
	polling sync.Mutex

	mu       sync.Mutex
	qr       map[string]string
	status   map[string]string
	versions map[string][2]int64 // status and QR versions
	cursor   int64               // the change feed's cursor after the last poll (0: read everything)
	changed  chan struct{}
	last     time.Time
	errors   int
}

func newLaravelWatch(admin *fakelaravel.AdminClient, ledger *truth.Ledger) *laravelWatch {
	return &laravelWatch{admin: admin, ledger: ledger, qr: map[string]string{}, status: map[string]string{}, versions: map[string][2]int64{}, changed: make(chan struct{})}
}

// poll reads what changed in Laravel since the last poll. Polls run one at a time, so the ledger
// sees Laravel's states in the order they were read.
func (w *laravelWatch) poll(ctx context.Context) error {
	w.polling.Lock()
	defer w.polling.Unlock()
	st, err := w.admin.GetStateSince(ctx, w.cursor)
	now := time.Now()
	if err != nil {
		w.mu.Lock()
		w.errors++
		w.mu.Unlock()
		return err
	}
	w.mu.Lock()
	prev := w.last
	w.last = now
	w.cursor = st.Cursor
	changed := false
	// A full snapshot (cursor 0: a server without the feed answers everything each time) replaces
	// the copy: a session it lacks is gone from Laravel (a reset).
	if st.Full || st.Cursor == 0 {
		keep := make(map[string]bool, len(st.Sessions))
		for _, s := range st.Sessions {
			keep[s.SessionID] = true
		}
		for id := range w.status {
			if !keep[id] {
				delete(w.status, id)
				delete(w.qr, id)
				delete(w.versions, id)
				changed = true
			}
		}
	}
	type obs struct {
		id string
		truth.Observation
	}
	var seen []obs
	for _, s := range st.Sessions {
		status, qr, versions := string(s.EstadoQR), s.QR, [2]int64{s.StatusVersion, s.QRVersion}
		if w.status[s.SessionID] == status && w.qr[s.SessionID] == qr && w.versions[s.SessionID] == versions {
			continue
		}
		if w.status[s.SessionID] != status || w.qr[s.SessionID] != qr {
			changed = true
		}
		w.status[s.SessionID], w.qr[s.SessionID], w.versions[s.SessionID] = status, qr, versions
		// Applied at Laravel's updated_at when it falls within this poll's window; else when seen.
		at := now
		if u, err := time.ParseInLocation(fakelaravel.TimeLayout, s.UpdatedAt, time.UTC); err == nil && u.After(prev) && !u.After(now) {
			at = u
		}
		seen = append(seen, obs{s.SessionID, truth.Observation{Status: s.EstadoQR, StatusVersion: s.StatusVersion, QR: qr, QRVersion: s.QRVersion, At: at}})
	}
	if changed {
		close(w.changed)
		w.changed = make(chan struct{})
	}
	w.mu.Unlock()
	for _, o := range seen {
		w.ledger.ObserveLaravel(o.id, o.Observation)
	}
	return nil
}

// QR implements user.LaravelView.
func (w *laravelWatch) QR(sessionID string) (string, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.qr[sessionID], w.changed
}

// Statuses returns every session's last seen estado_qr.
func (w *laravelWatch) Statuses() map[string]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]string, len(w.status))
	for k, v := range w.status {
		out[k] = v
	}
	return out
}

// ByState counts sessions by estado_qr, restricted to ids when given.
func (w *laravelWatch) ByState(ids []string) map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]int{}
	for _, id := range ids {
		if s, ok := w.status[id]; ok && s != "" {
			out[s]++
		}
	}
	return out
}
