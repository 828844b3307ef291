// Package wagate is the session-churn driver behind k6/x/wagate, in plain Go (no JavaScript
// engine, no k6 code): start a session through the gateway API as the Laravel app does, read the
// QR code Laravel received, pair a fake phone with it, drop its connection, replace its stream,
// log it out (from the app or from the phone), send messages, let the session's customer write to
// it, and read the ground truth. Every
// operation records into the world's ground-truth ledger and emits wagate_* metrics with the
// caller's tags, so the same package can back this repository's k6 runtime or an xk6 extension
// for real k6 (a shim outside this repository).
package wagate

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"wagate/gateway/laravel"
	"wagate/reports"
	"wagate/simulator/metrics"
	"wagate/simulator/threshold"
	"wagate/simulator/truth"
	"wagate/simulator/user"
)

// Metrics the driver emits, with their types (wagate_pair_duration is a time trend).
var Metrics = map[string]string{
	"wagate_sessions_started": threshold.Counter,
	"wagate_pairings":         threshold.Counter,
	"wagate_pairing_failures": threshold.Counter,
	"wagate_pair_duration":    threshold.Trend,
	"wagate_qr_wait":          threshold.Trend,
	"wagate_drops":            threshold.Counter,
	"wagate_replaces":         threshold.Counter,
	"wagate_logouts":          threshold.Counter,
	"wagate_messages_sent":    threshold.Counter,
	"wagate_messages_written": threshold.Counter,
	// Ground truth, recorded by GroundTruth.
	"lost_updates":             threshold.Counter,
	"stale_overwrites":         threshold.Counter,
	"duplicate_applications":   threshold.Counter,
	"gateway_state_mismatches": threshold.Counter,
	"qr_expired_unseen":        threshold.Counter,
	"ground_truth_sessions":    threshold.Counter,
	"event_delivery_delay":     threshold.Trend,
	"qr_visibility_delay":      threshold.Trend,
}

// World is what the driver runs against: the users' environment of a started (or external)
// world, and its ground truth.
type World interface {
	Env() *user.Env
	// GroundTruth compares Laravel's final state with what was caused, after the drain.
	GroundTruth(ctx context.Context) (reports.GroundTruth, error)
}

// ErrUnknownSession is returned for a session id this driver did not start.
var ErrUnknownSession = errors.New("unknown session (start it with startSession first)")

// Driver runs the churn operations. Its methods are safe for concurrent use by many VUs.
type Driver struct {
	world World
	env   *user.Env
	// instance distinguishes session ids and phone numbers of several simulator instances.
	instance int
	next     atomic.Int64
	mu       sync.Mutex
	sessions map[string]*session
}

type session struct {
	id, phone, jid string
	started        time.Time
}

// New returns a driver over world; instance is the execution-segment index (0 alone).
func New(world World, instance int) *Driver {
	return &Driver{world: world, env: world.Env(), instance: instance, sessions: map[string]*session{}}
}

// Session describes a started session.
type Session struct {
	ID    string `js:"id"`
	Phone string `js:"phone"`
	// Status is the gateway's answer to the start (estado_qr, usually "pending").
	Status     string `js:"status"`
	HTTPStatus int    `js:"httpStatus"`
}

func (d *Driver) get(id string) (*session, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.sessions[id]
	if s == nil {
		return nil, fmt.Errorf("session %q: %w", id, ErrUnknownSession)
	}
	return s, nil
}

// StartSession starts session id (generated when empty) through the gateway API: POST /sessions.
func (d *Driver) StartSession(ctx context.Context, id string, tags metrics.Tags) (Session, error) {
	n := d.next.Add(1)
	if id == "" {
		id = fmt.Sprintf("k6-i%d-%d", d.instance, n)
	}
	s := &session{id: id, phone: fmt.Sprintf("2%03d%07d", d.instance%1000, n%10_000_000), started: time.Now()}
	d.env.Ledger.Started(id, s.phone, s.started, tags)
	r, err := d.env.API.Start(ctx, id, tags)
	if err != nil {
		if user.Unreached(err) {
			d.env.Ledger.Forget(id) // the gateway is down: the session exists nowhere
		} else {
			d.env.Ledger.Unanswered(id) // no answer: it may exist or not
		}
		return Session{}, fmt.Errorf("start %s: %w", id, err)
	}
	d.mu.Lock()
	d.sessions[id] = s
	d.mu.Unlock()
	d.env.Reg.Add("wagate_sessions_started", 1, tags)
	return Session{ID: id, Phone: s.phone, Status: user.StatusOf(r), HTTPStatus: r.Status}, nil
}

// WaitQR waits (at most timeout) for a QR code of session id in Laravel that differs from
// previous, and returns it: the code the person in front of the Laravel page would scan.
func (d *Driver) WaitQR(ctx context.Context, id, previous string, timeout time.Duration, tags metrics.Tags) (string, error) {
	began := time.Now()
	limit := time.NewTimer(timeout)
	defer limit.Stop()
	for {
		qr, changed := d.env.Laravel.QR(id)
		if qr != "" && qr != previous {
			d.env.Reg.ObserveDuration("wagate_qr_wait", time.Since(began), tags)
			return qr, nil
		}
		select {
		case <-changed:
		case <-limit.C:
			return "", fmt.Errorf("session %s: no QR code in Laravel after %s", id, timeout)
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

// Paired describes a paired session.
type Paired struct {
	JID string `js:"jid"`
	QR  string `js:"qr"`
	// DurationMs is from the session's start to its device connected.
	DurationMs float64 `js:"durationMs"`
}

// Pair scans the QR code Laravel shows for session id with the session's fake phone and waits
// (at most timeout) until the linked device is connected to the gateway.
func (d *Driver) Pair(ctx context.Context, id string, timeout time.Duration, tags metrics.Tags) (Paired, error) {
	s, err := d.get(id)
	if err != nil {
		return Paired{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	fail := func(err error) (Paired, error) {
		d.env.Reg.Add("wagate_pairing_failures", 1, tags)
		return Paired{}, err
	}
	tried := ""
	for {
		qr, err := d.WaitQR(ctx, id, tried, timeout, tags)
		if err != nil {
			return fail(err)
		}
		tried = qr
		at := time.Now()
		scan := d.env.Ledger.Attempt(id, laravel.StatusConnected, at)
		jid, err := d.env.Phone.Pair(ctx, qr, s.phone)
		if err != nil {
			if user.ScanUnanswered(err) {
				scan.Unacknowledged() // the phone may still link the device
			} else {
				scan.Undo()
			}
			if ctx.Err() != nil {
				return fail(fmt.Errorf("pair %s: %w", id, ctx.Err()))
			}
			continue // the code rotated between reading and scanning: wait for the next
		}
		d.env.Ledger.Paired(id, jid, at)
		d.mu.Lock()
		s.jid = jid
		d.mu.Unlock()
		connectedAt, err := d.env.Phone.WaitConnected(ctx, jid, at)
		if err != nil {
			return fail(fmt.Errorf("session %s: paired device %s did not connect: %w", id, jid, err))
		}
		dur := connectedAt.Sub(s.started)
		d.env.Reg.Add("wagate_pairings", 1, tags)
		d.env.Reg.ObserveDuration("wagate_pair_duration", dur, tags)
		return Paired{JID: jid, QR: qr, DurationMs: float64(dur) / float64(time.Millisecond)}, nil
	}
}

func (d *Driver) jid(id string) (string, error) {
	s, err := d.get(id)
	if err != nil {
		return "", err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if s.jid == "" {
		return "", fmt.Errorf("session %s is not paired", id)
	}
	return s.jid, nil
}

// Drop cuts the session's device connection (a network failure); the gateway reconnects by
// itself, so the session is expected to end connected again.
func (d *Driver) Drop(_ context.Context, id string, tags metrics.Tags) error {
	jid, err := d.jid(id)
	if err != nil {
		return err
	}
	undo := d.env.Ledger.Caused(id, laravel.StatusDisconnected, time.Now())
	d.env.Ledger.Expect(id, laravel.StatusConnected)
	if err := d.env.Phone.Drop(jid); err != nil {
		undo()
		return fmt.Errorf("drop %s: %w", id, err)
	}
	d.env.Reg.Add("wagate_drops", 1, tags)
	return nil
}

// Replace makes WhatsApp replace the session's stream (another client took over): the session
// ends disconnected.
func (d *Driver) Replace(_ context.Context, id string, tags metrics.Tags) error {
	jid, err := d.jid(id)
	if err != nil {
		return err
	}
	undo := d.env.Ledger.Caused(id, laravel.StatusDisconnected, time.Now())
	if err := d.env.Phone.Replace(jid); err != nil {
		undo()
		return fmt.Errorf("replace %s: %w", id, err)
	}
	d.env.Reg.Add("wagate_replaces", 1, tags)
	return nil
}

// Logout logs the session out through the gateway API, as the Laravel app does (DELETE
// /sessions/{id}); it returns the gateway's HTTP status.
func (d *Driver) Logout(ctx context.Context, id string, tags metrics.Tags) (int, error) {
	if _, err := d.get(id); err != nil {
		return 0, err
	}
	logout := d.env.Ledger.Attempt(id, laravel.StatusLoggedOut, time.Now())
	r, err := d.env.API.Logout(ctx, id, tags)
	switch {
	case user.Unreached(err) || (err == nil && r.Status >= 300):
		logout.Undo() // refused, or never reached a running gateway: nothing changed
	case err != nil:
		logout.Unacknowledged() // reached the gateway, no answer: it may have logged out or not
	}
	if err != nil {
		return 0, fmt.Errorf("logout %s: %w", id, err)
	}
	t := with(tags, "by", "app")
	d.env.Reg.Add("wagate_logouts", 1, t)
	return r.Status, nil
}

// PhoneLogout removes the linked device from the phone (a remote logout).
func (d *Driver) PhoneLogout(_ context.Context, id string, tags metrics.Tags) error {
	jid, err := d.jid(id)
	if err != nil {
		return err
	}
	undo := d.env.Ledger.Caused(id, laravel.StatusLoggedOut, time.Now())
	if err := d.env.Phone.Logout(jid); err != nil {
		undo()
		return fmt.Errorf("phone logout %s: %w", id, err)
	}
	t := with(tags, "by", "phone")
	d.env.Reg.Add("wagate_logouts", 1, t)
	return nil
}

// Sent is a send's answer.
type Sent struct {
	HTTPStatus int            `js:"httpStatus"`
	Body       map[string]any `js:"body"`
}

// Send sends a text message from session id through the gateway API; to defaults to the world's
// message recipient.
func (d *Driver) Send(ctx context.Context, id, to, text string, tags metrics.Tags) (Sent, error) {
	if to == "" {
		to = d.env.MessageTo
	}
	r, err := d.env.API.Send(ctx, id, to, text, tags)
	if err != nil {
		return Sent{}, fmt.Errorf("send from %s: %w", id, err)
	}
	if r.Status < 300 {
		d.env.Reg.Add("wagate_messages_sent", 1, tags)
	}
	return Sent{HTTPStatus: r.Status, Body: r.Body}, nil
}

// Received is a customer's message fakewa accepted for a session.
type Received struct {
	// ID is the message's WhatsApp id (quote it to reply to this message).
	ID string `js:"id"`
	// From is the customer's phone number.
	From string `js:"from"`
}

// Receive makes the session's customer write text to session id (a reply quoting the message
// quote when set), as the YAML users' incomingMessagesPerMinute does: fakewa delivers it to the
// session's device, and the ground truth expects Laravel to store it once, in order.
func (d *Driver) Receive(ctx context.Context, id, text, quote string, tags metrics.Tags) (Received, error) {
	jid, err := d.jid(id)
	if err != nil {
		return Received{}, err
	}
	s, err := d.get(id)
	if err != nil {
		return Received{}, err
	}
	from := user.CustomerPhone(s.phone)
	at := time.Now()
	mid, err := d.env.Phone.Write(ctx, jid, from, text, quote)
	if err != nil {
		if ctx.Err() == nil {
			d.env.Reg.Add("message_write_failures", 1, tags)
		}
		return Received{}, fmt.Errorf("customer writing to %s: %w", id, err)
	}
	if d.env.Messages != nil {
		d.env.Messages.Wrote(truth.Written{SessionID: id, Chat: from + "@s.whatsapp.net", MessageID: mid, At: at, Tags: tags})
	}
	d.env.Reg.Add("wagate_messages_written", 1, tags)
	return Received{ID: mid, From: from}, nil
}

// Status reads the session's status from the gateway API (GET /sessions/{id}).
func (d *Driver) Status(ctx context.Context, id string, tags metrics.Tags) (string, error) {
	r, err := d.env.API.Status(ctx, id, tags)
	if err != nil {
		return "", fmt.Errorf("status %s: %w", id, err)
	}
	return user.StatusOf(r), nil
}

// NewPoller returns a poller of session id's status or QR code (endpoint user.EndpointStatus or
// user.EndpointQR) for requests under ctx, as the Laravel app's pollers poll: its request and tags
// are built once, so a caller polling one session again and again (a k6 VU's loop) reuses it.
// Close releases it.
func (d *Driver) NewPoller(ctx context.Context, endpoint, id string, tags metrics.Tags) *user.Poller {
	return d.env.API.NewPoller(ctx, endpoint, id, tags)
}

// PollEvery is one of the Laravel app's pollers of session id's status or QR code (endpoint
// user.EndpointStatus or user.EndpointQR), as the native users' pollers poll while their session
// pairs and lives: the first request after first, then one after each answer and a think time
// drawn by pace (the scenario's interval on average, user.PollJitter each way), until ctx ends. It
// returns when ctx ends; a caller runs it on a goroutine of its own.
func (d *Driver) PollEvery(ctx context.Context, endpoint, id string, first time.Duration, pace *user.Pace, tags metrics.Tags) {
	p := d.env.API.NewPoller(ctx, endpoint, id, tags)
	defer p.Close()
	p.Every(ctx, first, pace, nil)
}

// PollStatus is Status as the Laravel app's pollers call it: the answer is measured, not decoded.
func (d *Driver) PollStatus(ctx context.Context, id string, tags metrics.Tags) error {
	if err := d.env.API.PollStatus(ctx, id, tags); err != nil {
		return fmt.Errorf("poll status %s: %w", id, err)
	}
	return nil
}

// PollQR is the Laravel app's page polling the session's QR code (GET /sessions/{id}/qr) while its
// user pairs: the answer is measured, not decoded.
func (d *Driver) PollQR(ctx context.Context, id string, tags metrics.Tags) error {
	if err := d.env.API.PollQR(ctx, id, tags); err != nil {
		return fmt.Errorf("poll QR %s: %w", id, err)
	}
	return nil
}

// LaravelQR is the QR code Laravel holds for session id now ("" when none).
func (d *Driver) LaravelQR(id string) string {
	qr, _ := d.env.Laravel.QR(id)
	return qr
}

// GroundTruth compares Laravel's final state with everything the driver caused (after the
// world's drain) and records lost_updates, stale_overwrites, duplicate_applications, ...
func (d *Driver) GroundTruth(ctx context.Context) (reports.GroundTruth, error) {
	return d.world.GroundTruth(ctx)
}

// with returns a copy of tags with k set to v.
func with(tags metrics.Tags, k, v string) metrics.Tags {
	t := make(metrics.Tags, len(tags)+1)
	for n, val := range tags {
		t[n] = val
	}
	t[k] = v
	return t
}
