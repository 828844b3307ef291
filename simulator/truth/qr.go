package truth

import (
	"time"

	gatewaysession "wagate/gateway/session"
	"wagate/simulator/metrics"
)

// QRTiming is the gateway's QR rotation, needed to know when each code was shown and expired.
type QRTiming = gatewaysession.QRTiming

// RefIssue tells when fakewa issued a pairing ref, and its position among the refs issued together.
type RefIssue struct {
	At    time.Time
	Index int
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
	from, _ := l.qr.Window(iss.Index)
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
		_, until := l.qr.Window(k)
		if issuedAt.Add(until).After(stop) {
			break // still showing, or shown after pairing
		}
		if at, seen := seenIdx[k]; !seen || at.After(issuedAt.Add(until)) {
			n++
		}
	}
	return n
}
