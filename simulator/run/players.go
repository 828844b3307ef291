package run

import (
	"context"
	"fmt"
	"time"

	"wagate/gateway/laravel"
	"wagate/simulator/scenario"
)

// A faultPlayer injects one kind of fault into the running world. Inject starts the fault (for a
// wave of WhatsApp events or a hostile flood it plays the whole fault before it returns) and says
// how to heal it; heal is nil when the fault heals by itself. Inject fills the window's Detail
// (and Start when the fault begins later than the call, e.g. a SIGTERM that waits for a flush).
//
// Every fault of a scenario's schedule, and so every fault the chaos campaign draws (it writes
// its schedules as scenario files), goes through playFault and one of these players.
type faultPlayer interface {
	// Kind names the kind of fault: laravel, whatsapp, gateway, redis or clients.
	Kind() string
	Inject(ctx context.Context, flt scenario.Fault, w *FaultWindow) (heal func(context.Context) error, err error)
}

// errSkipped marks a fault a player cannot play in this world (e.g. a Redis fault on the
// embedded miniredis): it is logged and recorded, and the run goes on.
type errSkipped struct{ reason string }

func (e errSkipped) Error() string { return e.reason }

// playerFor returns the player of a schedule entry.
func (r *runner) playerFor(flt scenario.Fault) faultPlayer {
	switch {
	case flt.Laravel != nil:
		return laravelPlayer{r}
	case flt.WhatsApp != nil:
		return whatsappPlayer{r}
	case flt.Process != nil && flt.Process.Action == scenario.ProcessHostileClients:
		return clientsPlayer{r}
	case flt.Process.OnRedis():
		return redisPlayer{r}
	default:
		return gatewayPlayer{r}
	}
}

// prepareFault readies the world for a fault at the start of the run (AOF on redis-server before
// a Redis fault, so that restarting it keeps its data as production's does).
func (r *runner) prepareFault(ctx context.Context, flt scenario.Fault) error {
	if !flt.Process.OnRedis() || r.redisChild() == nil {
		return nil
	}
	if err := r.enableAOF(ctx); err != nil {
		return fmt.Errorf("turning AOF on: %w", err)
	}
	return nil
}

// playFault plays one schedule entry: it waits for the fault's time, injects it with its player,
// waits out the fault's duration, heals it, records its window in faults.json and follows the
// gateway's recovery from the heal. A fault that could not be played is recorded with its error.
func (r *runner) playFault(ctx context.Context, flt scenario.Fault) {
	p := r.playerFor(flt)
	w := FaultWindow{Name: flt.Name, Kind: faultSection(flt), Action: faultAction(flt)}
	if err := r.prepareFault(ctx, flt); err != nil {
		w.Start, w.End, w.Error = r.start.Add(flt.At.Std()), r.start.Add(flt.At.Std()), err.Error()
		r.log.Warn("fault", "name", flt.Name, "err", err)
		r.recordWindow(w)
		return
	}
	select {
	case <-time.After(flt.At.Std() - time.Since(r.start)):
	case <-ctx.Done():
		return
	}
	// A fault begun is healed even when the users stop meanwhile; bounded by the fault itself.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Minute+flt.Duration.Std()+flt.WhatsAppSpread())
	defer cancel()
	r.log.Info("fault", "name", flt.Name, "kind", p.Kind(), "action", w.Action, "duration", flt.Duration)
	b := r.baseline(actx)
	w.Start = time.Now()
	heal, err := p.Inject(actx, flt, &w)
	if err != nil {
		w.Error = err.Error()
		if w.End.IsZero() {
			w.End = time.Now()
		}
		if _, skipped := err.(errSkipped); skipped {
			r.log.Warn("fault skipped", "name", flt.Name, "reason", err)
		} else {
			r.log.Error("fault", "name", flt.Name, "err", err)
		}
		r.recordWindow(w)
		return
	}
	// The duration counts from the injection; players that play the whole fault in Inject have
	// used it up already. A Laravel fault is healed early when the users stop.
	wait := ctx
	if flt.Laravel == nil {
		wait = actx
	}
	select {
	case <-time.After(time.Until(w.Start.Add(flt.Duration.Std()))):
	case <-wait.Done():
	}
	if heal != nil {
		if err := heal(actx); err != nil {
			w.Error = "heal: " + err.Error()
			r.log.Error("fault heal", "name", flt.Name, "err", err)
		}
	}
	if w.End.IsZero() {
		w.End = time.Now()
	}
	r.recordWindow(w)
	r.watchFrom(flt, b, w.End)
}

// faultSection is the scenario section of a fault, its kind in faults.json: laravel, whatsapp or
// process.
func faultSection(flt scenario.Fault) string {
	switch {
	case flt.Laravel != nil:
		return "laravel"
	case flt.WhatsApp != nil:
		return "whatsapp"
	}
	return "process"
}

// faultAction is the WhatsApp or process action of a fault ("" for Laravel faults).
func faultAction(flt scenario.Fault) string {
	switch {
	case flt.WhatsApp != nil:
		return flt.WhatsApp.Action
	case flt.Process != nil:
		return flt.Process.Action
	}
	return ""
}

// laravelHealRetry bounds how long a Laravel fault's heal retries fakelaravel's admin API.
const laravelHealRetry = 10 * time.Second

// laravelPlayer replaces fakelaravel's faults for the fault's duration, then restores the
// scenario's initial faults (a fault without a duration stays until the next one).
type laravelPlayer struct{ r *runner }

func (laravelPlayer) Kind() string { return "laravel" }

func (p laravelPlayer) Inject(ctx context.Context, flt scenario.Fault, w *FaultWindow) (func(context.Context) error, error) {
	r := p.r
	faults, err := laravelFaults(flt.Laravel, flt.Duration.Std())
	if err != nil {
		return nil, err
	}
	if err := r.w.admin.SetFaults(ctx, faults); err != nil {
		return nil, fmt.Errorf("set fakelaravel's faults: %w", err)
	}
	w.Detail = describeLaravelFaults(flt.Laravel)
	if flt.Duration <= 0 {
		w.End = w.Start // in effect until the next Laravel fault
		return nil, nil
	}
	return func(ctx context.Context) error {
		base, err := laravelFaults(r.f.Laravel.Faults, 0)
		if err != nil {
			return err
		}
		// A down window refuses the admin API too, up to its very end: retry for a while.
		deadline := time.Now().Add(laravelHealRetry)
		for {
			err = r.w.admin.SetFaults(ctx, base)
			if err == nil || time.Now().After(deadline) {
				return err
			}
			select {
			case <-ctx.Done():
				return err
			case <-time.After(100 * time.Millisecond):
			}
		}
	}, nil
}

// whatsappPlayer plays a wave of WhatsApp events on a share of the connected sessions, spread
// over the fault's spread, telling the ground truth what each event causes; or restarts fakewa.
type whatsappPlayer struct{ r *runner }

func (whatsappPlayer) Kind() string { return "whatsapp" }

func (p whatsappPlayer) Inject(ctx context.Context, flt scenario.Fault, w *FaultWindow) (func(context.Context) error, error) {
	r := p.r
	wf := flt.WhatsApp
	if wf.Action == "restart" {
		online := r.ownOnline()
		at := time.Now()
		var undos []func()
		for id := range online {
			undos = append(undos, r.ledger.Caused(id, laravel.StatusDisconnected, at))
			r.ledger.Expect(id, laravel.StatusConnected)
		}
		if err := r.w.wa.Restart(ctx); err != nil {
			for _, u := range undos {
				u()
			}
			return nil, fmt.Errorf("restart fakewa: %w", err)
		}
		w.Detail = fmt.Sprintf("fakewa restarted with %d sessions online", len(online))
		return nil, nil
	}
	if wf.Action == "down" {
		return r.whatsappDown(ctx, flt, w) // outage.go
	}
	if wf.Action == "silent" {
		return r.whatsappSilent(ctx, flt, w) // silence.go
	}
	if wf.Action == "handshake-cut" {
		return r.whatsappHandshakeCut(ctx, flt, w) // handshakecut.go
	}
	share, ids, online := r.onlineShare(wf)
	n := len(ids)
	var gap time.Duration
	if n > 1 {
		gap = wf.Spread.Std() / time.Duration(n)
	}
	failed := 0
	for i := range n {
		id := ids[i]
		jid := online[id]
		at := time.Now()
		var err error
		switch wf.Action {
		case "drop":
			undo := r.ledger.Caused(id, laravel.StatusDisconnected, at)
			r.ledger.Expect(id, laravel.StatusConnected)
			if err = r.phones.Drop(jid); err != nil {
				undo()
			}
		case "replace":
			undo := r.ledger.Caused(id, laravel.StatusDisconnected, at)
			if err = r.phones.Replace(jid); err != nil {
				undo()
			}
		case "logout":
			undo := r.ledger.Caused(id, laravel.StatusLoggedOut, at)
			if err = r.phones.Logout(jid); err != nil {
				undo()
			}
		}
		if err != nil {
			failed++
			r.log.Debug("fault action", "action", wf.Action, "jid", jid, "err", err)
		}
		if gap > 0 {
			select {
			case <-time.After(gap):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	w.Detail = fmt.Sprintf("%s on %d of %d online sessions (share %.2f, %d failed)", wf.Action, n, len(online), share, failed)
	return nil, nil
}

// clientsPlayer floods the gateway's API with hostile clients for the fault's duration.
type clientsPlayer struct{ r *runner }

func (clientsPlayer) Kind() string { return "clients" }

func (p clientsPlayer) Inject(ctx context.Context, flt scenario.Fault, w *FaultWindow) (func(context.Context) error, error) {
	return nil, p.r.hostileFlood(ctx, flt.Duration.Std(), w)
}
