// Package truth owns the ground truth of a simulation run: what every virtual user and every
// injected fault caused, what Laravel showed and when, and the verdict at the end (lost updates,
// stale overwrites, gateway state mismatches, QR codes that expired unseen). It speaks the
// gateway's vocabulary (gateway/laravel's estado_qr values, gateway/event's priorities) and
// copies none of its rules.
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

// QRTiming is the gateway's QR rotation, needed to know when each code was shown and expired.
type QRTiming struct {
	First, Next time.Duration
	Codes       int
}

// offset is when code k (0-based) is shown, relative to the refs being issued, and for how long.
func (q QRTiming) window(k int) (from, until time.Duration) {
	if k == 0 {
		return 0, q.First
	}
	from = q.First + time.Duration(k-1)*q.Next
	return from, from + q.Next
}

// RefIssue tells when fakewa issued a pairing ref, and its position among the refs issued together.
type RefIssue struct {
	At    time.Time
	Index int
}

type cause struct {
	status    laravel.Status
	at        time.Time
	delivered bool
}

// session is the ledger's record of one session.
type session struct {
	id, phone, jid string
	tags           metrics.Tags
	started        time.Time
	// expected is the final estado_qr the simulation generated; "" means never paired (pending or
	// expired are both right, depending on the gateway's QR expiry).
	expected laravel.Status
	causes   []cause
	pairedAt time.Time

	// What Laravel showed.
	laravelStatus  laravel.Status
	laravelVersion int64
	maxVersion     int64
	sawExpected    bool // Laravel showed expected after the last cause
	stale          bool
	qrSeen         map[string]time.Time // QR code -> when Laravel had it
}

// Ledger is the ground truth of a run: what every user caused and when, and what Laravel showed.
// It measures event delivery delay (cause -> Laravel), QR visibility delay, QR codes that expired
// before Laravel had them, and at the end counts lost updates and stale overwrites.
// Safe for concurrent use.
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
// returned undo forgets the cause when the action failed.
func (l *Ledger) Caused(id string, status laravel.Status, at time.Time) (undo func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.get(id)
	prevExpected, prevSaw := s.expected, s.sawExpected
	s.expected = status
	s.sawExpected = false
	s.causes = append(s.causes, cause{status: status, at: at})
	n := len(s.causes)
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if len(s.causes) == n && !s.causes[n-1].delivered {
			s.causes = s.causes[:n-1]
			s.expected, s.sawExpected = prevExpected, prevSaw
		}
	}
}

// Expect sets the final state the session should settle in without a measured cause (whatsmeow
// reconnecting by itself after a drop).
func (l *Ledger) Expect(id string, status laravel.Status) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.get(id)
	s.expected = status
	s.sawExpected = false
}

// Paired records the device the session's phone linked.
func (l *Ledger) Paired(id, jid string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.get(id)
	s.jid, s.pairedAt = jid, at
}

// ObserveLaravel records what Laravel shows for a session: its estado_qr with version, its QR,
// and when the write was applied (appliedAt, from Laravel's updated_at when usable) or observed.
func (l *Ledger) ObserveLaravel(id string, status laravel.Status, version int64, qr string, appliedAt time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.sessions[id]
	if s == nil {
		return // not a session of this simulator instance
	}
	if qr != "" {
		if _, seen := s.qrSeen[qr]; !seen {
			s.qrSeen[qr] = appliedAt
			l.qrSeenLocked(s, qr, appliedAt)
		}
	}
	if version > 0 && version < s.maxVersion {
		s.stale = true
	}
	s.maxVersion = max(s.maxVersion, version)
	if status == "" || (status == s.laravelStatus && version == s.laravelVersion) {
		return
	}
	s.laravelStatus, s.laravelVersion = status, version
	// Deliver: the latest undelivered cause with this status that happened before the write.
	idx := -1
	for i, c := range s.causes {
		if !c.delivered && c.status == status && !c.at.After(appliedAt) {
			idx = i
		}
	}
	if idx >= 0 {
		c := &s.causes[idx]
		delay := appliedAt.Sub(c.at)
		t := metrics.Tags{"kind": "status", "priority": priorityOf(status), "event": string(status)}
		for k, v := range s.tags {
			t[k] = v
		}
		l.reg.ObserveDuration("event_delivery_delay", delay, t)
		for i := 0; i <= idx; i++ {
			s.causes[i].delivered = true // earlier states were superseded (coalesced)
		}
	}
	switch {
	case s.expected != "" && status == s.expected:
		s.sawExpected = true
	case s.sawExpected:
		// Laravel had the final state and something older replaced it.
		s.stale = true
	}
}

// qrSeenLocked measures how long after its generation Laravel had code qr.
func (l *Ledger) qrSeenLocked(s *session, qr string, at time.Time) {
	ref := refOf(qr)
	if l.refIssue == nil || ref == "" {
		return
	}
	iss, ok := l.refIssue(ref)
	if !ok {
		return
	}
	from, _ := l.qr.window(iss.Index)
	generated := iss.At.Add(from)
	d := at.Sub(generated)
	if d < 0 {
		d = 0
	}
	l.reg.ObserveDuration("qr_visibility_delay", d, s.tags)
	t := metrics.Tags{"kind": "qr", "priority": "normal", "event": "qr"}
	for k, v := range s.tags {
		t[k] = v
	}
	l.reg.ObserveDuration("event_delivery_delay", d, t)
}

// refOf returns the pairing ref of a QR string ("ref,noise,identity,adv" or a URL form's first
// field), "" when it has none.
func refOf(qr string) string {
	for i := 0; i < len(qr); i++ {
		if qr[i] == ',' {
			return qr[:i]
		}
	}
	return ""
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

// Finish compares Laravel's final state (status by session id, as last observed) with the
// gateway's own final state and with what the simulation generated; it counts QR codes that
// expired before Laravel had them (given end, the time the run stopped watching) and records
// lost_updates, stale_overwrites, gateway_state_mismatches, qr_expired_unseen and
// ground_truth_sessions.
//
// A lost update is a session whose final state in Laravel differs from the gateway's (the
// delivery pipeline lost it); without the gateway's view (gateway nil or missing the session)
// the simulation's expectation stands in. A session where Laravel agrees with the gateway but the
// gateway disagrees with the simulation is a gateway mismatch.
func (l *Ledger) Finish(final, gateway map[string]string, end time.Time) Truth {
	l.mu.Lock()
	defer l.mu.Unlock()
	var t Truth
	note := func(s string) {
		if len(t.Mismatches) < 10 {
			t.Mismatches = append(t.Mismatches, s)
		}
	}
	for _, id := range l.order {
		s := l.sessions[id]
		t.Sessions++
		got := laravel.Status(final[id])
		matches := func(state laravel.Status) bool {
			if s.expected == "" {
				return state == laravel.StatusPending || state == laravel.StatusExpired
			}
			return state == s.expected
		}
		gwState, haveGW := gateway[id]
		gw := laravel.Status(gwState)
		switch {
		case s.stale:
			t.Stale++
			note(id + ": stale overwrite, Laravel shows " + quote(got) + ", expected " + quote(s.expected))
		case haveGW && got != gw:
			t.Lost++
			note(id + ": lost update, Laravel shows " + quote(got) + ", the gateway " + quote(gw))
		case !haveGW && !matches(got):
			t.Lost++
			note(id + ": lost update, Laravel shows " + quote(got) + ", expected " + quote(s.expected))
		case haveGW && !matches(gw):
			t.GatewayMismatches++
			note(id + ": gateway shows " + quote(gw) + " (Laravel agrees), the simulation caused " + quote(s.expected))
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

func quote(s laravel.Status) string {
	if s == "" {
		return "nothing"
	}
	return string(s)
}

// expiredUnseenLocked counts the session's QR codes whose display window ended before pairing (or
// end) without Laravel having had them in that window.
func (l *Ledger) expiredUnseenLocked(s *session, end time.Time) int64 {
	if l.refIssue == nil || l.qr.Codes <= 0 {
		return 0
	}
	// The session's first batch of refs (the earliest issue among the codes Laravel saw) is the
	// one the gateway rotated through; a later batch (after a reconnect) restarts the rotation, so
	// the first batch is only judged until then.
	var issuedAt, nextBatch time.Time
	type seenCode struct {
		iss RefIssue
		at  time.Time
	}
	var seen []seenCode
	for qr, at := range s.qrSeen {
		iss, ok := l.refIssue(refOf(qr))
		if !ok {
			continue
		}
		seen = append(seen, seenCode{iss, at})
		if issuedAt.IsZero() || iss.At.Before(issuedAt) {
			issuedAt = iss.At
		}
	}
	if issuedAt.IsZero() {
		return 0 // Laravel never had a code: the QR flow itself is counted as a lost update if it matters
	}
	seenIdx := map[int]time.Time{}
	for _, c := range seen {
		if c.iss.At.Equal(issuedAt) {
			seenIdx[c.iss.Index] = c.at
		} else if nextBatch.IsZero() || c.iss.At.Before(nextBatch) {
			nextBatch = c.iss.At
		}
	}
	stop := end
	if !s.pairedAt.IsZero() && s.pairedAt.Before(stop) {
		stop = s.pairedAt
	}
	if !nextBatch.IsZero() && nextBatch.Before(stop) {
		stop = nextBatch
	}
	var n int64
	for k := 0; k < l.qr.Codes; k++ {
		_, until := l.qr.window(k)
		if issuedAt.Add(until).After(stop) {
			break // still showing, or shown after pairing
		}
		if at, seen := seenIdx[k]; !seen || at.After(issuedAt.Add(until)) {
			n++
		}
	}
	return n
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
