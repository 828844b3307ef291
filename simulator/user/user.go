package user

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"wagate/gateway/laravel"
	"wagate/simulator/executor"
	"wagate/simulator/metrics"
	"wagate/simulator/scenario"
	"wagate/simulator/truth"
)

// Phone is the WhatsApp side a user's phone acts on (fakewa).
type Phone interface {
	// Pair scans qr as the owner of phone and returns the linked device's JID.
	Pair(ctx context.Context, qr, phone string) (jid string, err error)
	// WaitConnected waits until the device logged in and returns when it did.
	WaitConnected(ctx context.Context, jid string, after time.Time) (time.Time, error)
	// Drop cuts the device's connection (network failure); Replace sends stream-replaced;
	// Logout removes the device from the phone.
	Drop(jid string) error
	Replace(jid string) error
	Logout(jid string) error
	// Write makes the customer's phone from write text to the device jid (a reply quoting
	// quote when set) and returns the message id fakewa accepted.
	Write(ctx context.Context, jid, from, text, quote string) (id string, err error)
}

// LaravelView is what the Laravel app shows for a session (fakelaravel's state, watched).
type LaravelView interface {
	// QR returns the QR code Laravel currently has for the session ("" when none) and a channel
	// closed at its next change of any session.
	QR(sessionID string) (qr string, changed <-chan struct{})
}

// Env is everything users share within one simulator process.
type Env struct {
	API     *API
	Phone   Phone
	Laravel LaravelView
	Ledger  *truth.Ledger
	Reg     *metrics.Registry
	// Instance distinguishes the session ids and phone numbers of simulator instances (the
	// execution segment's index), so several instances never collide.
	Instance int
	// Seed makes every user's random choices reproducible.
	Seed uint64
	// MessageTo is the phone number messages are sent to.
	MessageTo string
	// Messages records what the customers wrote, for the ground truth (nil: not recorded).
	Messages *truth.Messages

	mu       sync.Mutex
	sessions int64
}

// Scenario runs one k6 scenario's users with one behaviour.
type Scenario struct {
	Env       *Env
	Name      string
	Behaviour scenario.Behaviour
	Tags      metrics.Tags
}

// ErrGaveUp is returned by an iteration whose person gave up pairing.
var ErrGaveUp = errors.New("user gave up pairing")

// Iterate runs one iteration: one session of one account, from start to its end (logout, the
// phone removing the device, a replaced stream, or the user simply stopping).
func (sc *Scenario) Iterate(ctx context.Context, vu executor.VU) error {
	e := sc.Env
	e.mu.Lock()
	e.sessions++
	n := e.sessions
	e.mu.Unlock()
	u := &user{
		sc:    sc,
		id:    fmt.Sprintf("%s-i%d-%d", sc.Name, e.Instance, n),
		phone: fmt.Sprintf("1%03d%07d", e.Instance%1000, n%10_000_000),
		rng:   rand.New(rand.NewPCG(e.Seed, uint64(e.Instance)<<40|uint64(n))),
		tags:  metrics.Tags{"scenario": sc.Name},
		vu:    vu,
	}
	for k, v := range sc.Tags {
		u.tags[k] = v
	}
	if vu.Iteration == 0 {
		if !u.sleep(ctx, sc.Behaviour.StartDelay.Sample(u.rng)) {
			return nil
		}
	}
	return u.run(ctx)
}

type user struct {
	sc    *Scenario
	id    string
	phone string
	jid   string
	rng   *rand.Rand
	tags  metrics.Tags
	vu    executor.VU
}

func (u *user) b() scenario.Behaviour { return u.sc.Behaviour }

// sleep waits d, or until ctx ends or the VU is told to stop; it reports whether d elapsed.
func (u *user) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil && !stopping(u.vu)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-u.vu.Stopping:
		return false
	}
}

func stopping(vu executor.VU) bool {
	select {
	case <-vu.Stopping:
		return true
	default:
		return false
	}
}

// lazyEndBound bounds how long a user waits at the run's end for its pollers to reach their next
// poll time (Poller.Every) before it ends them at once: beyond an executor's gracefulStop the
// iteration would be interrupted.
const lazyEndBound = 2 * time.Second

// LazyEnd is how long the run's end waits for pollers that poll every interval to reach their
// next poll time (Poller.Every) before it ends them at once: their longest think time, interval x
// (1+PollJitter), at most lazyEndBound.
func LazyEnd(interval time.Duration) time.Duration {
	return min(interval+time.Duration(float64(interval)*PollJitter), lazyEndBound)
}

// startRetries is how often a user starts its session again after a 503 answer.
const startRetries = 10

// startFailedPause is how long a user whose start failed (no answer, or answered 502/504) waits
// before its iteration ends and the next one starts a new session: the retry of a Laravel job,
// never a tight loop. Each VU thus starts at most one session a second while starts fail.
const startFailedPause = time.Second

func (u *user) run(ctx context.Context) error {
	e := u.sc.Env
	// The Laravel app polls status while the session lives: Pollers loops, each waiting for its
	// answer then StatusPollInterval.
	pollCtx, stopPolling := context.WithCancel(ctx)
	defer stopPolling()
	started := time.Now()
	e.Ledger.Started(u.id, u.phone, started, u.tags)
	resp, err := e.API.Start(ctx, u.id, u.tags)
	// A cluster answers 503 (session_moving, Retry-After: 1) while the session's shard moves
	// between replicas: the session was not started; the Laravel app tries again a bit later.
	for try := 0; err == nil && resp.Status == http.StatusServiceUnavailable && try < startRetries; try++ {
		u.sleep(ctx, time.Second)
		resp, err = e.API.Start(ctx, u.id, u.tags)
	}
	if err == nil && resp.Status == http.StatusServiceUnavailable {
		e.Ledger.Forget(u.id) // refused every time: it exists nowhere
		return fmt.Errorf("start %s: refused with 503 %d times", u.id, startRetries+1)
	}
	if err == nil && (resp.Status == http.StatusBadGateway || resp.Status == http.StatusGatewayTimeout) {
		// A replica that forwarded the start answers 502 (holder_failed) when the holder failed
		// mid-answer: the session may exist or not, as after no answer at all. Taken for started,
		// a session nobody created was judged a lost update (Laravel shows nothing).
		// The gateway also answers 502 (whatsapp_error) when WhatsApp refused the start's
		// connect. Either way the Laravel app tries again a bit later, not at once: a user
		// starting its next session the instant one failed made 1,324 sessions in a 2 s
		// WhatsApp outage (chaos whatsapp-down), each one's status events crowding the outbox.
		e.Ledger.Unanswered(u.id)
		u.sleep(ctx, startFailedPause)
		return fmt.Errorf("start %s: answered %d, the outcome is unknown", u.id, resp.Status)
	}
	if err != nil {
		if Unreached(err) {
			// The gateway is down: the session exists nowhere.
			e.Ledger.Forget(u.id)
		} else {
			// No answer (the gateway died mid-request, the run ended): it may exist or not.
			e.Ledger.Unanswered(u.id)
		}
		// Wait before the next attempt as a Laravel job would, instead of spinning.
		u.sleep(ctx, startFailedPause)
		return fmt.Errorf("start %s: %w", u.id, err)
	}
	var wg sync.WaitGroup
	defer func() {
		// The pollers end when their context does, before waiting; at the run's end (the VU
		// stopping) each ends at its next poll time instead (Poller.Every), not all at once,
		// within LazyEnd.
		if !stopping(u.vu) {
			stopPolling()
		} else {
			defer time.AfterFunc(LazyEnd(u.b().StatusPollInterval.Std()), stopPolling).Stop()
		}
		wg.Wait()
	}()
	for i := range *u.b().Pollers {
		// Spread pollers so they do not all fire together; drawn here because u.rng is the
		// user's alone (the pollers' goroutines must not share it). Each poller's think times
		// are seeded by its spread, not drawn from u.rng, so the user's other draws are as before.
		spread := time.Duration(u.rng.Int64N(int64(u.b().StatusPollInterval.Std()) + 1))
		pace := NewPace(u.b().StatusPollInterval.Std(), uint64(spread), uint64(i))
		wg.Go(func() { u.pollStatus(pollCtx, spread, pace) })
	}
	if err := u.pair(ctx, pollCtx, started); err != nil {
		return err
	}
	return u.live(ctx)
}

// pollStatus polls the session's status every StatusPollInterval (on average: pace) after
// waiting spread.
func (u *user) pollStatus(ctx context.Context, spread time.Duration, pace *Pace) {
	p := u.sc.Env.API.NewPoller(ctx, EndpointStatus, u.id, u.tags)
	defer p.Close()
	p.Every(ctx, spread, pace, u.vu.Stopping)
}

// pair plays the person in front of the Laravel page: wait for a QR there, take ScanDelay to
// scan it, and link the phone; a failed scan waits for the next code. It polls the gateway's QR
// endpoint meanwhile, as the Laravel app does.
func (u *user) pair(ctx, pollCtx context.Context, started time.Time) error {
	e := u.sc.Env
	b := u.b()
	qrCtx, stopQR := context.WithCancel(pollCtx)
	defer stopQR()
	id := fnv.New64a()
	_, _ = id.Write([]byte(u.id))
	pace := NewPace(b.QRPollInterval.Std(), id.Sum64(), 1) // seeded by the session: no draw from u.rng
	go func() {
		p := e.API.NewPoller(qrCtx, EndpointQR, u.id, u.tags)
		defer p.Close()
		p.Every(qrCtx, b.QRPollInterval.Std(), pace, u.vu.Stopping)
	}()
	giveUp := time.NewTimer(b.GiveUpAfter.Std())
	defer giveUp.Stop()
	tried := ""
	for {
		// Wait for a code in Laravel that was not tried yet.
		var qr string
		for {
			var changed <-chan struct{}
			qr, changed = e.Laravel.QR(u.id)
			if qr != "" && qr != tried {
				break
			}
			select {
			case <-changed:
			case <-giveUp.C:
				e.Reg.Add("pairing_failures", 1, u.tags)
				return ErrGaveUp
			case <-ctx.Done():
				return ctx.Err()
			case <-u.vu.Stopping:
				return nil
			}
		}
		if !u.sleep(ctx, b.ScanDelay.Sample(u.rng)) {
			return ctx.Err()
		}
		qr, _ = e.Laravel.QR(u.id) // the code on screen when the phone scans
		tried = qr
		if u.rng.Float64() >= *b.ScanSuccess {
			e.Reg.Add("scan_failures", 1, metrics.Tags{"scenario": u.tags["scenario"], "reason": "missed"})
			continue
		}
		at := time.Now()
		scan := e.Ledger.Attempt(u.id, laravel.StatusConnected, at)
		jid, err := e.Phone.Pair(ctx, qr, u.phone)
		if err != nil {
			reason := "rejected"
			if ScanUnanswered(err) {
				// The phone may still link the device (fakewa completes a pairing the client
				// signs, whoever waits for it): either final state is right.
				scan.Unacknowledged()
				reason = "unanswered"
			} else {
				scan.Undo()
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			e.Reg.Add("scan_failures", 1, metrics.Tags{"scenario": u.tags["scenario"], "reason": reason})
			continue
		}
		u.jid = jid
		e.Ledger.Paired(u.id, jid, at)
		connCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
		connectedAt, err := e.Phone.WaitConnected(connCtx, jid, at)
		cancel()
		ok := err == nil
		e.Reg.Check("paired and connected", ok, u.tags)
		if !ok {
			e.Reg.Add("pairing_failures", 1, u.tags)
			return fmt.Errorf("session %s: paired device %s did not connect: %w", u.id, jid, err)
		}
		e.Reg.Add("pairings", 1, u.tags)
		e.Reg.ObserveDuration("pairing_duration", connectedAt.Sub(started), u.tags)
		return nil
	}
}

// exp draws an exponential wait for a rate per hour; 0 rate means never.
func (u *user) exp(perHour float64) time.Duration {
	if perHour <= 0 {
		return time.Duration(1<<62 - 1)
	}
	return time.Duration(u.rng.ExpFloat64() / perHour * float64(time.Hour))
}

// live is the connected life of a session: messages, churn and the end.
func (u *user) live(ctx context.Context) error {
	if u.jid == "" {
		return nil // stopped while pairing
	}
	e := u.sc.Env
	b := u.b()
	end := time.NewTimer(b.SessionLifetime.Sample(u.rng))
	defer end.Stop()
	perMin := *b.MessagesPerMinute
	nextMsg := func() time.Duration {
		if perMin <= 0 {
			return time.Duration(1<<62 - 1)
		}
		return time.Duration(u.rng.ExpFloat64() / perMin * float64(time.Minute))
	}
	msg := time.NewTimer(nextMsg())
	in := newIncoming(u, *b.IncomingMessagesPerMinute, *b.Replies)
	defer in.timer.Stop()
	drop := time.NewTimer(u.exp(*b.DropsPerHour))
	replace := time.NewTimer(u.exp(*b.ReplacedPerHour))
	remote := time.NewTimer(u.exp(*b.RemoteLogoutsPerHour))
	defer msg.Stop()
	defer drop.Stop()
	defer replace.Stop()
	defer remote.Stop()
	sent := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-u.vu.Stopping:
			return nil
		case <-msg.C:
			sent++
			r, err := e.API.Send(ctx, u.id, e.MessageTo, fmt.Sprintf("message %d from %s", sent, u.id), u.tags)
			if err == nil && r.Status < 300 {
				e.Reg.Add("messages_sent", 1, u.tags)
			}
			msg.Reset(nextMsg())
		case <-in.timer.C:
			in.write(ctx)
		case <-drop.C:
			undo := e.Ledger.Caused(u.id, laravel.StatusDisconnected, time.Now())
			e.Ledger.Expect(u.id, laravel.StatusConnected) // whatsmeow reconnects by itself
			if err := e.Phone.Drop(u.jid); err != nil {
				undo()
			}
			drop.Reset(u.exp(*b.DropsPerHour))
		case <-replace.C:
			undo := e.Ledger.Caused(u.id, laravel.StatusDisconnected, time.Now())
			if err := e.Phone.Replace(u.jid); err == nil {
				return nil // the session was taken over; this user is done with it
			}
			undo()
			replace.Reset(u.exp(*b.ReplacedPerHour))
		case <-remote.C:
			undo := e.Ledger.Caused(u.id, laravel.StatusLoggedOut, time.Now())
			if err := e.Phone.Logout(u.jid); err == nil {
				return nil
			}
			undo()
			remote.Reset(u.exp(*b.RemoteLogoutsPerHour))
		case <-end.C:
			if u.rng.Float64() < *b.LogoutAtEnd {
				logout := e.Ledger.Attempt(u.id, laravel.StatusLoggedOut, time.Now())
				r, err := e.API.Logout(ctx, u.id, u.tags)
				switch {
				case Unreached(err) || (err == nil && r.Status >= 300):
					// Refused, or never reached a running gateway: nothing changed.
					logout.Undo()
				case err != nil:
					// Reached the gateway but never answered (killed mid-request): it may have
					// logged out or not.
					logout.Unacknowledged()
				}
			}
			return nil
		}
	}
}
