// Package wagatejs exposes the wagate churn driver to k6 scripts as the module k6/x/wagate: a
// thin goja binding whose lowerCamel methods call simulator/k6/wagate with the calling VU's
// context (so calls end with the iteration) and tags (scenario, group, script tags), and return
// plain objects.
//
//	import wagate from "k6/x/wagate";
//	const s = wagate.startSession();            // {id, phone, status, httpStatus}
//	const qr = wagate.waitQR(s.id, "30s");      // the code Laravel received
//	const p = wagate.pair(s.id, "120s");        // {jid, qr, durationMs}
//	wagate.startPair(s.id, "120s");             // the same pairing in the background, and then
//	wagate.waitPair(s.id, 500);                 // {jid, qr, durationMs}, or null while pairing after 500 ms
//	wagate.send(s.id, "hello");                 // {httpStatus, body}
//	const m = wagate.receive(s.id, "hi");       // the session's customer writes: {id, from}
//	wagate.receive(s.id, "and", m.id);          // a reply quoting the customer's message m
//	wagate.status(s.id);                        // the gateway's estado_qr
//	wagate.pollStatus(s.id);                    // the same request, answer not decoded (pollers)
//	wagate.pollQR(s.id);                        // GET /sessions/{id}/qr, answer not decoded
//	wagate.startPolling(s.id, "status", "2s");  // the app's status poller, in the background
//	wagate.stopPolling(s.id);                   // ends it (the iteration's end does too)
//	wagate.pollJitter;                          // 0.1: the pollers' think times, interval x (1 ± it)
//	wagate.drop(s.id); wagate.replace(s.id); wagate.phoneLogout(s.id);
//	wagate.logout(s.id);                        // the gateway's HTTP status
//	wagate.groundTruth();                       // {sessions, lostUpdates, staleOverwrites, duplicateApplications}
//
// An xk6 extension for real k6 can expose the same surface over the same Go package.
package wagatejs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dop251/goja"

	"wagate/reports"
	"wagate/simulator/k6/js"
	"wagate/simulator/k6/options"
	"wagate/simulator/k6/wagate"
	"wagate/simulator/metrics"
	"wagate/simulator/user"
)

// ModuleName is the import name.
const ModuleName = "k6/x/wagate"

// ErrNoWorld is thrown when a script calls k6/x/wagate without a world to drive.
var ErrNoWorld = errors.New("k6/x/wagate has no world: run with --world FILE.yaml (or options.ext.wagate.world)")

// Extension is k6/x/wagate for one test run: the driver is set once the world started.
type Extension struct {
	// driver is read by every call of every VU: an atomic load, not a lock all VUs share.
	driver atomic.Pointer[wagate.Driver]
	mu     sync.Mutex // guards truth
	truth  *reports.GroundTruth
}

// SetDriver gives the extension its driver (before setup()).
func (e *Extension) SetDriver(d *wagate.Driver) {
	e.driver.Store(d)
}

func (e *Extension) get() (*wagate.Driver, error) {
	d := e.driver.Load()
	if d == nil {
		return nil, ErrNoWorld
	}
	return d, nil
}

// GroundTruth computes the ground truth once (a script's own call in teardown, or the runner
// after teardown) and returns it.
func (e *Extension) GroundTruth(ctx context.Context) (reports.GroundTruth, error) {
	d, err := e.get()
	if err != nil {
		return reports.GroundTruth{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.truth != nil {
		return *e.truth, nil
	}
	t, err := d.GroundTruth(ctx)
	if err != nil {
		return reports.GroundTruth{}, err
	}
	e.truth = &t
	return t, nil
}

// Metrics are the metrics the module and its world emit, for threshold validation: the wagate_*
// metrics and the ground truth, and the simulator's catalog (laravel_reqs,
// laravel_requests_per_minute, event_delivery_delay, ...).
func (e *Extension) Metrics() map[string]string {
	out := map[string]string{}
	for n, info := range metrics.Catalog {
		out[n] = info.Type
	}
	for n, t := range wagate.Metrics {
		out[n] = t
	}
	return out
}

// Module is the js.ModuleFactory of k6/x/wagate.
func (e *Extension) Module(vu *js.VU) (goja.Value, error) {
	rt := vu.RT
	o := rt.NewObject()
	driver := func() *wagate.Driver {
		if vu.InInit() {
			vu.Throw("k6/x/wagate calls can't be made in the init context")
		}
		d, err := e.get()
		if err != nil {
			vu.Throw("%v", err)
		}
		return d
	}
	fail := func(err error) {
		if err != nil {
			vu.Throw("%v", err)
		}
	}
	duration := func(v goja.Value, def time.Duration) time.Duration {
		if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
			return def
		}
		if s, ok := v.Export().(string); ok {
			d, err := options.ParseDuration(s)
			if err != nil {
				vu.Throw("%v", err)
			}
			return d
		}
		return time.Duration(v.ToFloat() * float64(time.Millisecond))
	}
	str := func(v goja.Value) string {
		if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
			return ""
		}
		return v.String()
	}
	set := func(name string, f func(goja.FunctionCall) goja.Value) {
		if err := o.Set(name, f); err != nil {
			panic(err)
		}
	}
	set("startSession", func(c goja.FunctionCall) goja.Value {
		s, err := driver().StartSession(vu.Context(), str(c.Argument(0)), vu.SampleTags())
		fail(err)
		return rt.ToValue(map[string]any{"id": s.ID, "phone": s.Phone, "status": s.Status, "httpStatus": s.HTTPStatus})
	})
	set("waitQR", func(c goja.FunctionCall) goja.Value {
		// waitQR(id, [timeout], [previous]): a code other than previous (a missed scan waits for the next).
		qr, err := driver().WaitQR(vu.Context(), str(c.Argument(0)), str(c.Argument(2)), duration(c.Argument(1), 60*time.Second), vu.SampleTags())
		fail(err)
		return rt.ToValue(qr)
	})
	set("pair", func(c goja.FunctionCall) goja.Value {
		p, err := driver().Pair(vu.Context(), str(c.Argument(0)), duration(c.Argument(1), 120*time.Second), vu.SampleTags())
		fail(err)
		return rt.ToValue(map[string]any{"jid": p.JID, "qr": p.QR, "durationMs": p.DurationMs})
	})
	// startPair(id, [timeout]) begins pair in the background and returns at once; waitPair(id,
	// [wait]) returns its {jid, qr, durationMs} once the device is connected, null while it is
	// still pairing after wait (ms or a duration string; absent: until it ends), and throws when
	// it failed. A script's page thus polls between waits while its person pairs, as the native
	// users' pollers poll during their pairing. The iteration's end cancels a pairing not waited for.
	pairs := &backgroundPairs{vu: vu}
	set("startPair", func(c goja.FunctionCall) goja.Value {
		d := driver()
		id := str(c.Argument(0))
		if err := pairs.start(d, id, duration(c.Argument(1), 120*time.Second)); err != nil {
			vu.Throw("startPair(%q): %v", id, err)
		}
		return goja.Undefined()
	})
	set("waitPair", func(c goja.FunctionCall) goja.Value {
		id := str(c.Argument(0))
		p, done, err := pairs.wait(id, duration(c.Argument(1), -1))
		if err != nil {
			vu.Throw("%v", err)
		}
		if !done {
			return goja.Null()
		}
		return rt.ToValue(map[string]any{"jid": p.JID, "qr": p.QR, "durationMs": p.DurationMs})
	})
	set("drop", func(c goja.FunctionCall) goja.Value {
		fail(driver().Drop(vu.Context(), str(c.Argument(0)), vu.SampleTags()))
		return goja.Undefined()
	})
	set("replace", func(c goja.FunctionCall) goja.Value {
		fail(driver().Replace(vu.Context(), str(c.Argument(0)), vu.SampleTags()))
		return goja.Undefined()
	})
	set("phoneLogout", func(c goja.FunctionCall) goja.Value {
		fail(driver().PhoneLogout(vu.Context(), str(c.Argument(0)), vu.SampleTags()))
		return goja.Undefined()
	})
	set("logout", func(c goja.FunctionCall) goja.Value {
		st, err := driver().Logout(vu.Context(), str(c.Argument(0)), vu.SampleTags())
		fail(err)
		return rt.ToValue(st)
	})
	set("send", func(c goja.FunctionCall) goja.Value {
		s, err := driver().Send(vu.Context(), str(c.Argument(0)), str(c.Argument(2)), str(c.Argument(1)), vu.SampleTags())
		fail(err)
		return rt.ToValue(map[string]any{"httpStatus": s.HTTPStatus, "body": s.Body})
	})
	set("receive", func(c goja.FunctionCall) goja.Value {
		// receive(id, text, [quote]): the session's customer writes text (replying to quote).
		m, err := driver().Receive(vu.Context(), str(c.Argument(0)), str(c.Argument(1)), str(c.Argument(2)), vu.SampleTags())
		fail(err)
		return rt.ToValue(map[string]any{"id": m.ID, "from": m.From})
	})
	set("status", func(c goja.FunctionCall) goja.Value {
		s, err := driver().Status(vu.Context(), str(c.Argument(0)), vu.SampleTags())
		fail(err)
		return rt.ToValue(s)
	})
	// The VU's pollers of the session it polled last: a script's loop polls one session again and
	// again, as the native users' pollers do, and reuses their request and tags.
	statusPoller, qrPoller := &vuPoller{endpoint: user.EndpointStatus}, &vuPoller{endpoint: user.EndpointQR}
	poll := func(vp *vuPoller, id string) {
		p := vp.current(vu, id)
		if p == nil {
			p = vp.renew(driver(), vu, id)
		}
		if err := p.Poll(); err != nil {
			vu.Throw("poll %s %s: %v", vp.endpoint, id, err)
		}
	}
	set("pollStatus", func(c goja.FunctionCall) goja.Value {
		poll(statusPoller, str(c.Argument(0)))
		return goja.Undefined()
	})
	set("pollQR", func(c goja.FunctionCall) goja.Value {
		poll(qrPoller, str(c.Argument(0)))
		return goja.Undefined()
	})
	// startPolling(id, "status"|"qr", every): the app's poller of the session in the background, as
	// the native users' poller goroutines (the script's VU meanwhile sleeps, pairs, sends); it polls
	// until stopPolling(id, [what]) or the end of the iteration.
	bg := &backgroundPolls{}
	vuEnds := false
	set("startPolling", func(c goja.FunctionCall) goja.Value {
		d := driver()
		id, what := str(c.Argument(0)), str(c.Argument(1))
		every := duration(c.Argument(2), 0)
		if every <= 0 {
			vu.Throw("startPolling(%q, %q): the interval must be positive", id, what)
		}
		// The native users' pollers: the status's first poll spread within one interval of the
		// start, the QR code's after one interval; think times jittered around the interval.
		var endpoint string
		var first time.Duration
		var pace *user.Pace
		switch what {
		case "status":
			endpoint, first = user.EndpointStatus, time.Duration(rand.Int64N(int64(every)+1))
			pace = user.NewPace(every, uint64(first), 0)
		case "qr":
			h := fnv.New64a()
			_, _ = h.Write([]byte(id))
			endpoint, first, pace = user.EndpointQR, every, user.NewPace(every, h.Sum64(), 1)
		default:
			vu.Throw("startPolling(%q, %q): what is \"status\" or \"qr\"", id, what)
		}
		if !vuEnds {
			vu.AtCallEnd(func() { bg.stop("", ""); vuEnds = false })
			vuEnds = true
		}
		tags := vu.SampleTags() // read on the VU's goroutine: the poller's is another
		bg.start(vu.Context(), func(ctx context.Context) { d.PollEvery(ctx, endpoint, id, first, pace, tags) }, id, what)
		return goja.Undefined()
	})
	set("stopPolling", func(c goja.FunctionCall) goja.Value {
		bg.stop(str(c.Argument(0)), str(c.Argument(1)))
		return goja.Undefined()
	})
	// pollJitter is how far the native users' pollers' think times stray from the interval, each
	// way (user.PollJitter): a script's own poll loops draw theirs the same.
	if err := o.Set("pollJitter", user.PollJitter); err != nil {
		panic(err)
	}
	set("laravelQR", func(c goja.FunctionCall) goja.Value {
		return rt.ToValue(driver().LaravelQR(str(c.Argument(0))))
	})
	set("groundTruth", func(goja.FunctionCall) goja.Value {
		driver()
		t, err := e.GroundTruth(vu.Context())
		fail(err)
		return rt.ToValue(map[string]any{"sessions": t.Sessions, "lostUpdates": t.LostUpdates, "staleOverwrites": t.StaleOverwrites, "duplicateApplications": t.DuplicateApplications})
	})
	return o, nil
}

// backgroundPolls are the pollers one VU's iteration started with startPolling, each on a
// goroutine of its own (which inherits the VU's pprof labels).
type backgroundPolls struct {
	running []*backgroundPoll
}

type backgroundPoll struct {
	id, what string
	cancel   context.CancelFunc
	done     chan struct{}
}

// start runs poll under a context of its own, derived from the iteration's ctx.
func (b *backgroundPolls) start(ctx context.Context, poll func(context.Context), id, what string) {
	ctx, cancel := context.WithCancel(ctx)
	p := &backgroundPoll{id: id, what: what, cancel: cancel, done: make(chan struct{})}
	b.running = append(b.running, p)
	go func() {
		defer close(p.done)
		poll(ctx)
	}()
}

// stop ends the pollers of session id ("" any) polling what ("" any) and waits for them, so that
// none records a request afterwards.
func (b *backgroundPolls) stop(id, what string) {
	kept := b.running[:0]
	var stopped []*backgroundPoll
	for _, p := range b.running {
		if (id == "" || p.id == id) && (what == "" || p.what == what) {
			p.cancel()
			stopped = append(stopped, p)
		} else {
			kept = append(kept, p)
		}
	}
	clear(b.running[len(kept):])
	b.running = kept
	for _, p := range stopped {
		<-p.done
	}
}

// backgroundPairs are the pairings one VU's iteration started with startPair, each on a goroutine
// of its own (which inherits the VU's pprof labels), by session id.
type backgroundPairs struct {
	vu      *js.VU
	running map[string]*backgroundPair
	// ends says the end of the VU's current call is registered to cancel the running pairings.
	ends bool
}

type backgroundPair struct {
	cancel context.CancelFunc
	done   chan struct{}
	paired wagate.Paired
	err    error
}

// errNoPairing is waitPair's error for a session startPair did not begin pairing in this iteration.
var errNoPairing = errors.New("no pairing started in this iteration (startPair first)")

// start pairs session id in the background (wagate.Driver.Pair) under the VU's iteration.
func (b *backgroundPairs) start(d *wagate.Driver, id string, timeout time.Duration) error {
	if _, ok := b.running[id]; ok {
		return errors.New("the session is already pairing (waitPair for it first)")
	}
	if b.running == nil {
		b.running = map[string]*backgroundPair{}
	}
	if !b.ends {
		b.vu.AtCallEnd(b.stop)
		b.ends = true
	}
	tags := b.vu.SampleTags() // read on the VU's goroutine: the pairing's is another
	ctx, cancel := context.WithCancel(b.vu.Context())
	p := &backgroundPair{cancel: cancel, done: make(chan struct{})}
	b.running[id] = p
	go func() {
		defer close(p.done)
		p.paired, p.err = d.Pair(ctx, id, timeout, tags)
	}()
	return nil
}

// wait waits at most wait (negative: until it ends, or the iteration does) for session id's
// pairing; done reports whether it ended, and then the pairing is forgotten and its outcome
// returned.
func (b *backgroundPairs) wait(id string, wait time.Duration) (p wagate.Paired, done bool, err error) {
	bp := b.running[id]
	if bp == nil {
		return p, false, fmt.Errorf("waitPair(%q): %w", id, errNoPairing)
	}
	ctx := b.vu.Context()
	var expired <-chan time.Time
	if wait >= 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-bp.done:
	case <-expired:
		return p, false, nil
	case <-ctx.Done():
		return p, false, fmt.Errorf("waitPair(%q): %w", id, ctx.Err())
	}
	delete(b.running, id)
	bp.cancel()
	return bp.paired, true, bp.err
}

// stop cancels the pairings still running and waits for them, so that none records anything
// after the call that started them (an iteration) ended.
func (b *backgroundPairs) stop() {
	for id, p := range b.running {
		p.cancel()
		<-p.done
		delete(b.running, id)
	}
	b.ends = false
}

// vuPoller is one VU's poller of one endpoint, kept while the VU polls the same session in the same
// iteration, scenario and group (the poller's context and tags are theirs).
type vuPoller struct {
	endpoint     string
	id, scenario string
	group        string
	ctx          context.Context
	p            *user.Poller
}

// current returns the poller of session id for the VU's current iteration, scenario and group,
// nil when there is none yet (renew makes it). A poller exists only once a call out of the init
// context reached the driver, so a poll that finds one needs neither checked again.
func (vp *vuPoller) current(vu *js.VU, id string) *user.Poller {
	if vp.p != nil && vp.id == id && vp.ctx == vu.Context() && vp.scenario == vu.Scenario && vp.group == vu.GroupPath() {
		return vp.p
	}
	return nil
}

// renew makes the poller of session id for the VU's current iteration, scenario and group,
// releasing the previous one.
func (vp *vuPoller) renew(d *wagate.Driver, vu *js.VU, id string) *user.Poller {
	ctx := vu.Context()
	if vp.p != nil {
		vp.p.Close()
	}
	vp.id, vp.ctx, vp.scenario, vp.group = id, ctx, vu.Scenario, vu.GroupPath()
	vp.p = d.NewPoller(ctx, vp.endpoint, id, vu.SampleTags())
	return vp.p
}

// WorldSettings are options.ext.wagate: the scenario YAML whose world the script drives
// (relative to the script) and overrides of its fields.
type WorldSettings struct {
	World string   `json:"world"`
	Set   []string `json:"set"`
}

// Settings reads options.ext.wagate (zero when absent).
func Settings(o options.Options) (WorldSettings, error) {
	var s WorldSettings
	raw, ok := o.Ext["wagate"]
	if !ok {
		return s, nil
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return s, fmt.Errorf("options.ext.wagate: %w", err)
	}
	return s, nil
}
