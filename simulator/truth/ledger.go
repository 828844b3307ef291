package truth

import (
	"slices"
	"sync"
	"time"

	"wagate/gateway/event"
	"wagate/gateway/laravel"
	"wagate/simulator/metrics"
)

// priorityOf is the delivery priority the gateway gives to a status event of that estado_qr.
func priorityOf(status laravel.Status) string {
	return event.PriorityOf(event.KindStatus, string(status)).String()
}

// cause is one state change the simulation caused: the delivery delay is measured from it, and
// the session's expected final state is derived from the causes that stand (see expectedLocked).
type cause struct {
	status laravel.Status
	at     time.Time
	// settles is the state the session comes back to by itself after this cause ("" when it
	// stays): connected after a drop, which whatsmeow reconnects (Expect).
	settles   laravel.Status
	delivered bool
	// undone: the action failed after the cause was recorded (a refused logout request, a drop
	// of a device that was already gone): it never happened.
	undone bool
	// unacknowledged: the request for it got no answer (its connection broke, as when the
	// gateway is killed mid-request): it may or may not have happened (see Attempt.Unacknowledged).
	unacknowledged bool
}

// session is the ledger's record of one session.
type session struct {
	id, phone, jid string
	tags           metrics.Tags
	started        time.Time
	// expected is the final estado_qr the simulation generated (expectedLocked of the causes);
	// "" means never paired (pending or expired are both right, depending on the gateway's QR
	// expiry).
	expected laravel.Status
	// uncertain is set while a cause the expected state rests on was never acknowledged and
	// never seen delivered; otherwise is then the expected final state had it not happened.
	uncertain bool
	otherwise laravel.Status
	causes    []cause
	pairedAt  time.Time
	// unanswered: the request that started the session got no answer (see Unanswered).
	unanswered bool

	// What Laravel showed: its latest status and QR versions, the highest status version it ever
	// applied with the state it set, and the first stale write it applied.
	laravel    State
	laravelQRV int64
	newest     State
	regression *Regression
	qrSeen     map[string]time.Time // QR code -> when Laravel had it
}

// Ledger is the ground truth of a run: what every user and fault caused and when, and what Laravel
// showed with which versions. It measures event delivery delay (cause -> Laravel), QR visibility
// delay, QR codes that expired before Laravel had them, and at the end judges every session
// (lost update, stale overwrite, gateway mismatch). Safe for concurrent use.
type Ledger struct {
	mu       sync.Mutex
	reg      *metrics.Registry
	qr       QRTiming
	sessions map[string]*session
	order    []string
	// refIssue resolves a pairing ref to when fakewa issued it.
	refIssue func(ref string) (RefIssue, bool)
}

// NewLedger returns an empty ledger recording into reg; refIssue resolves pairing refs (may be nil).
func NewLedger(reg *metrics.Registry, qr QRTiming, refIssue func(ref string) (RefIssue, bool)) *Ledger {
	return &Ledger{reg: reg, qr: qr, sessions: map[string]*session{}, refIssue: refIssue}
}

func (l *Ledger) get(id string) *session {
	s := l.sessions[id]
	if s == nil {
		s = &session{id: id, qrSeen: map[string]time.Time{}}
		l.sessions[id] = s
		l.order = append(l.order, id)
	}
	return s
}

// Started records that a user started session id at at (the gateway reports pending).
func (l *Ledger) Started(id, phone string, at time.Time, tags metrics.Tags) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.get(id)
	s.phone, s.started, s.tags = phone, at, tags
	s.causes = append(s.causes, cause{status: laravel.StatusPending, at: at})
}

// Caused records that the simulation makes session id's state become status at at (a pairing,
// a drop, a logout): Laravel should show it, and the delay until it does is measured. Call it
// before acting, so that Laravel can never show the state before the ledger expects it; the
// returned undo forgets the cause when the action failed, even after later causes (a logout
// request that never reached the gateway, answered after a replaced stream).
func (l *Ledger) Caused(id string, status laravel.Status, at time.Time) (undo func()) {
	return l.Attempt(id, status, at).Undo
}

// Attempt records a cause like Caused and returns what the action's outcome can say about it.
func (l *Ledger) Attempt(id string, status laravel.Status, at time.Time) Attempt {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.get(id)
	s.causes = append(s.causes, cause{status: status, at: at})
	s.derivedLocked()
	return Attempt{l: l, s: s, i: len(s.causes) - 1}
}

// Attempt is one recorded cause whose action is under way.
type Attempt struct {
	l *Ledger
	s *session
	i int
}

// Undo forgets the cause: the action failed (refused, or it never reached the gateway), unless
// Laravel already showed it.
func (a Attempt) Undo() {
	a.l.mu.Lock()
	defer a.l.mu.Unlock()
	if c := &a.s.causes[a.i]; !c.delivered {
		c.undone = true
		a.s.derivedLocked()
	}
}

// Unacknowledged says the action's request reached the gateway but got no answer (the connection
// broke, as when the gateway is killed mid-request): the gateway may have acted on it or not, so
// the session's final state may be the one with the cause or the one without it. Once Laravel
// shows the cause, it happened, and the session is judged on it alone.
func (a Attempt) Unacknowledged() {
	a.l.mu.Lock()
	defer a.l.mu.Unlock()
	a.s.causes[a.i].unacknowledged = true
	a.s.derivedLocked()
}

// Expect says the session settles in status by itself after the cause just recorded for it,
// without a measured cause of its own (whatsmeow reconnecting after a drop).
func (l *Ledger) Expect(id string, status laravel.Status) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.get(id)
	if n := len(s.causes); n > 0 {
		s.causes[n-1].settles = status
	} else {
		s.causes = append(s.causes, cause{status: status, settles: status, delivered: true})
	}
	s.derivedLocked()
}

// derivedLocked derives the session's expected final state (expectedLocked), and the one it may
// end in instead when a cause it rests on was never acknowledged.
func (s *session) derivedLocked() {
	s.expected = s.expectedLocked(false)
	s.otherwise = s.expectedLocked(true)
	s.uncertain = s.otherwise != s.expected
}

// expectedLocked derives the session's expected final state from the causes that stand, in the
// order they were recorded: the last one's state (or the state it settles in), except that a
// logout is final until a new pairing. A logout removes the device: the gateway forgets it and
// ignores its old connection, WhatsApp no longer lets it in, so nothing WhatsApp does to the
// device afterwards, or while the logout request is on its way (recorded earlier but applied by
// the gateway later, as when the gateway was paused), changes the session. Only a new pairing
// (connected) does. "" means never paired. withoutUnacknowledged leaves out the causes whose
// request got no answer and that Laravel never showed.
func (s *session) expectedLocked(withoutUnacknowledged bool) laravel.Status {
	var exp laravel.Status
	for _, c := range s.causes {
		switch {
		case c.undone:
		case withoutUnacknowledged && c.unacknowledged && !c.delivered:
		case exp == laravel.StatusLoggedOut && c.status != laravel.StatusConnected:
		case c.settles != "":
			exp = c.settles
		case c.status == laravel.StatusPending: // a start: still never paired, or as before
		default:
			exp = c.status
		}
	}
	return exp
}

// Unanswered records that the request starting session id got no answer (the connection broke,
// as when the gateway is killed mid-request): the gateway may never have created the session. If
// at the end neither the gateway nor Laravel knows it, it existed nowhere, no promise was made
// about it, and it is not judged; if either knows it, it is judged like any other.
func (l *Ledger) Unanswered(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.get(id).unanswered = true
}

// Paired records the device the session's phone linked.
func (l *Ledger) Paired(id, jid string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.get(id)
	s.jid, s.pairedAt = jid, at
}

// Observation is one session as Laravel shows it at one moment.
type Observation struct {
	// Status is its estado_qr and StatusVersion the version of the write that set it (0 for a
	// legacy write, which carries none).
	Status        laravel.Status
	StatusVersion int64
	// QR is the code Laravel holds ("" when none) and QRVersion the version that set it.
	QR        string
	QRVersion int64
	// At is when the write was applied (Laravel's updated_at when usable) or else observed.
	At time.Time
}

// ObserveLaravel records what Laravel shows for session id. Observations of one session must come
// in the order they were read. A status version lower than one already seen, or the same version
// with another state, is a stale write Laravel applied; repeated observations (a duplicate
// delivery Laravel ignored, a poll with nothing new) change nothing.
func (l *Ledger) ObserveLaravel(id string, o Observation) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.sessions[id]
	if s == nil {
		return // not a session of this simulator instance
	}
	if o.QR != "" {
		if _, seen := s.qrSeen[o.QR]; !seen {
			s.qrSeen[o.QR] = o.At
			l.qrSeenLocked(s, o.QR, o.At)
		}
	}
	s.laravelQRV = max(s.laravelQRV, o.QRVersion)
	if o.Status == "" {
		return
	}
	now := State{Status: o.Status, Version: o.StatusVersion}
	if now == s.laravel {
		return
	}
	s.laravel = now
	if now.Version > 0 {
		switch {
		case now.Version > s.newest.Version:
			s.newest = now
		case s.regression == nil:
			s.regression = &Regression{Before: s.newest, After: now}
		}
	}
	l.deliveredLocked(s, o.Status, o.At)
}

// deliveredLocked measures the delivery delay of the latest undelivered cause of status that
// happened before Laravel applied it at appliedAt; earlier causes count as superseded.
func (l *Ledger) deliveredLocked(s *session, status laravel.Status, appliedAt time.Time) {
	idx := -1
	for i, c := range s.causes {
		if !c.delivered && !c.undone && c.status == status && !c.at.After(appliedAt) {
			idx = i
		}
	}
	if idx < 0 {
		return
	}
	t := metrics.Tags{"kind": "status", "priority": priorityOf(status), "event": string(status)}
	for k, v := range s.tags {
		t[k] = v
	}
	l.reg.ObserveDuration("event_delivery_delay", appliedAt.Sub(s.causes[idx].at), t)
	for i := 0; i <= idx; i++ {
		s.causes[i].delivered = true // earlier states were superseded (coalesced)
	}
	s.derivedLocked()
}

// Truth is the ground-truth comparison at the end of a run.
type Truth struct {
	Sessions, Lost, Stale, ExpiredUnseen int64
	// GatewayMismatches counts sessions whose gateway state differs from what the simulation
	// caused (e.g. a paired device that never logged in): not a delivery loss, a gateway failure.
	GatewayMismatches int64
	// Mismatches lists a few sessions that were lost, stale or mismatched, for the log.
	Mismatches []string
}

// Finish judges every session (see Judge) on what Laravel was last seen showing, the gateway's
// final states (by session id; nil when the gateway could not answer) and what the simulation
// caused; it counts QR codes that expired before Laravel had them (given end, the time the run
// stopped watching) and records lost_updates, stale_overwrites, gateway_state_mismatches,
// qr_expired_unseen and ground_truth_sessions. Observe Laravel's final state first (Converge does).
func (l *Ledger) Finish(gateway map[string]State, end time.Time) Truth {
	l.mu.Lock()
	defer l.mu.Unlock()
	var t Truth
	for _, id := range l.order {
		s := l.sessions[id]
		if _, gatewayKnows := gateway[id]; s.unanswered && !gatewayKnows && s.laravel == (State{}) && s.laravelQRV == 0 {
			continue // its start never reached the gateway: it exists nowhere
		}
		t.Sessions++
		verdict, why := Judge(l.evidenceLocked(s, gateway))
		switch verdict {
		case Lost:
			t.Lost++
		case StaleOverwrite:
			t.Stale++
		case GatewayMismatch:
			t.GatewayMismatches++
		}
		if verdict != Agrees && len(t.Mismatches) < 10 {
			t.Mismatches = append(t.Mismatches, id+": "+why)
		}
		t.ExpiredUnseen += l.expiredUnseenLocked(s, end)
	}
	l.reg.Add("lost_updates", float64(t.Lost), nil)
	l.reg.Add("stale_overwrites", float64(t.Stale), nil)
	l.reg.Add("gateway_state_mismatches", float64(t.GatewayMismatches), nil)
	l.reg.Add("qr_expired_unseen", float64(t.ExpiredUnseen), nil)
	l.reg.Add("ground_truth_sessions", float64(t.Sessions), nil)
	return t
}

// evidenceLocked gathers what Judge needs about s.
func (l *Ledger) evidenceLocked(s *session, gateway map[string]State) Evidence {
	e := s.expectation()
	e.Laravel, e.LaravelQRVersion, e.Regression = s.laravel, s.laravelQRV, s.regression
	e.Gateway, e.HaveGateway = gateway[s.id]
	return e
}

// expectation is the part of s's evidence that says what the simulation caused.
func (s *session) expectation() Evidence {
	return Evidence{Expected: s.expected, Uncertain: s.uncertain, Otherwise: s.otherwise}
}

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

// Sessions returns how many sessions the ledger knows.
func (l *Ledger) Sessions() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.sessions)
}

// IDs returns the session ids in the order they started.
func (l *Ledger) IDs() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.order...)
}

// LoggedOut is the set of devices (JIDs) whose session the simulation logged out: its expected
// final state is logged_out (a user's logout through the gateway's API that was not refused, or
// from the phone). Such a device does not come back after a fault, even while WhatsApp still
// lists it (a logout the gateway answered while WhatsApp was unreachable forgets the device in
// the gateway only, as the phone keeps a linked device it was never told about).
func (l *Ledger) LoggedOut() map[string]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]bool{}
	for _, s := range l.sessions {
		if s.jid != "" && s.expected == laravel.StatusLoggedOut {
			out[s.jid] = true
		}
	}
	return out
}

// JIDs maps every paired session to its device JID.
func (l *Ledger) JIDs() map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]string{}
	for id, s := range l.sessions {
		if s.jid != "" {
			out[id] = s.jid
		}
	}
	return out
}
