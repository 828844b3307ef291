package truth

import (
	"fmt"

	"wagate/gateway/laravel"
)

// State is a session's estado_qr at one place (the gateway, Laravel) and the version of the event
// that set it. Version 0 means the place does not know versions (legacy delivery sends none).
type State struct {
	Status  laravel.Status
	Version int64
}

func (s State) String() string {
	if s.Version == 0 {
		return quote(s.Status)
	}
	return fmt.Sprintf("%s v%d", quote(s.Status), s.Version)
}

// Regression is Laravel applying a status write whose version was not newer than one it had
// already applied for the session: Before was applied first, After replaced it.
type Regression struct {
	Before, After State
}

// Evidence is everything the verdict on one session rests on, gathered at the end of a run after
// the gateway's final states had time to reach Laravel.
type Evidence struct {
	// Expected is the final estado_qr the simulation caused; "" means the session never paired
	// (pending or expired are both right, depending on the gateway's QR expiry).
	Expected laravel.Status
	// Uncertain says a cause Expected rests on got no answer (a logout request cut by a gateway
	// kill): the gateway may never have acted on it, so Otherwise, the final state without that
	// cause ("" never paired), is right as well.
	Uncertain bool
	Otherwise laravel.Status
	// Laravel is the estado_qr Laravel shows at the end and its status version.
	Laravel State
	// LaravelQRVersion is the version of the last QR code Laravel applied (the gateway numbers QR
	// codes and statuses in one sequence per session).
	LaravelQRVersion int64
	// Gateway is the gateway's final state with the version of its latest event of any kind;
	// HaveGateway is false when the gateway could not say (it died, or did not answer).
	Gateway     State
	HaveGateway bool
	// Regression is the first stale write Laravel was seen applying, nil when none.
	Regression *Regression
}

// Verdict is the ground truth's judgement on one session.
type Verdict int

// The verdicts, from good to the failures the run counts.
const (
	// Agrees: Laravel shows the gateway's final state (or, without the gateway's view, what the
	// simulation caused), and never applied a stale write.
	Agrees Verdict = iota
	// Lost: the gateway's final event (its final version) never reached Laravel, or Laravel
	// refused it; without the gateway's view, Laravel does not show what the simulation caused.
	Lost
	// StaleOverwrite: Laravel applied a version not newer than one it had already applied.
	StaleOverwrite
	// GatewayMismatch: Laravel faithfully shows the gateway's state, but the gateway's state is not
	// what the simulation caused (a paired device that never logged in, a drop never reconnected).
	GatewayMismatch
)

func (v Verdict) String() string {
	switch v {
	case Agrees:
		return "agrees"
	case Lost:
		return "lost update"
	case StaleOverwrite:
		return "stale overwrite"
	case GatewayMismatch:
		return "gateway mismatch"
	}
	return fmt.Sprintf("verdict(%d)", int(v))
}

// Judge decides one session. Versions, not states, decide delivery: a state is transient when the
// gateway emitted a newer version after it, and Laravel showing a transient state at the end means
// the newer version never arrived (lost), however often that transient state recurs in the
// session's history. Laravel showing an older state than one it had shown is fine while the
// versions only grow (a drop's disconnected after the connected it interrupted); a version that
// goes back is a stale overwrite whatever the states. Without versions (legacy delivery) only the
// final states can be compared. The string says why, for the log; it is "" for Agrees.
func Judge(e Evidence) (Verdict, string) {
	if r := e.Regression; r != nil {
		return StaleOverwrite, fmt.Sprintf("stale overwrite: Laravel applied %s after %s", r.After, r.Before)
	}
	if !e.HaveGateway {
		if !e.expects(e.Laravel.Status) {
			return Lost, fmt.Sprintf("lost update: Laravel shows %s, the simulation caused %s (the gateway could not say)", e.Laravel, e.expectation())
		}
		return Agrees, ""
	}
	g, l := e.Gateway, e.Laravel
	reached := max(l.Version, e.LaravelQRVersion) // the newest event of the session Laravel applied
	versioned := g.Version > 0 && reached > 0
	switch {
	case versioned && reached < g.Version:
		return Lost, fmt.Sprintf("lost update: the gateway's final %s never reached Laravel, which shows %s", g, l)
	case l.Status != g.Status && versioned:
		return Lost, fmt.Sprintf("lost update: Laravel shows %s, not older than the gateway's final %s: the gateway's versions went back, so Laravel refused its final state", l, g)
	case l.Status != g.Status:
		return Lost, fmt.Sprintf("lost update: Laravel shows %s, the gateway %s", l, g)
	case !e.expects(g.Status):
		return GatewayMismatch, fmt.Sprintf("gateway mismatch: the gateway shows %s (Laravel agrees), the simulation caused %s", g, e.expectation())
	}
	return Agrees, ""
}

// expects reports whether status is a right final state for what the simulation caused.
func (e Evidence) expects(status laravel.Status) bool {
	return expects(e.Expected, status) || (e.Uncertain && expects(e.Otherwise, status))
}

func expects(expected, status laravel.Status) bool {
	if expected == "" {
		return status == laravel.StatusPending || status == laravel.StatusExpired
	}
	return status == expected
}

func (e Evidence) expectation() string {
	if !e.Uncertain {
		return expectation(e.Expected)
	}
	return fmt.Sprintf("%s, or %s if the gateway never acted on a request it did not answer", expectation(e.Expected), expectation(e.Otherwise))
}

func expectation(expected laravel.Status) string {
	if expected == "" {
		return "no pairing (pending or expired)"
	}
	return string(expected)
}

func quote(s laravel.Status) string {
	if s == "" {
		return "nothing"
	}
	return string(s)
}
