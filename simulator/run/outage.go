package run

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"syscall"
	"time"

	"go.mau.fi/whatsmeow/types"

	"wagate/gateway/laravel"
	"wagate/simulator/fakewa"
	"wagate/simulator/scenario"
)

// whatsappDown plays a WhatsApp outage (whatsapp action "down") for the fault's duration: with
// share 1 every connection is cut and every new dial refused (HTTP 503 before the handshake);
// with a smaller share, that share of the online sessions' devices have their connections cut
// and their logins cut unanswered. The gateway's reconnects fail until the heal ends the outage;
// the ground truth expects each affected session disconnected, then connected again.
func (r *runner) whatsappDown(ctx context.Context, flt scenario.Fault, w *FaultWindow) (func(context.Context) error, error) {
	if flt.Duration <= 0 {
		return nil, errors.New("a WhatsApp outage needs a duration")
	}
	share, ids, online, jids, err := r.shareOfOnline(flt.WhatsApp)
	if err != nil {
		return nil, err
	}
	n := len(ids)
	before, err := r.w.wa.Stats(ctx)
	if err != nil {
		return nil, fmt.Errorf("fakewa stats: %w", err)
	}
	at := time.Now()
	undos := make([]func(), 0, n)
	for _, id := range ids {
		undos = append(undos, r.ledger.Caused(id, laravel.StatusDisconnected, at))
		r.ledger.Expect(id, laravel.StatusConnected)
	}
	// The outage lasts until the heal; fakewa's own end is a backstop a little later.
	cut, err := r.w.wa.Unreachable(ctx, jids, flt.Duration.Std()+10*time.Second)
	if err != nil {
		for _, u := range undos {
			u()
		}
		return nil, fmt.Errorf("fakewa unreachable: %w", err)
	}
	scope := "every connection cut and every dial refused"
	if share < 1 {
		scope = fmt.Sprintf("%d of %d online sessions' devices cut and their logins refused (share %.2f)", n, online, share)
	}
	w.Detail = fmt.Sprintf("WhatsApp unreachable: %s; %d connections cut", scope, cut)
	return func(ctx context.Context) error {
		if err := r.w.wa.Reachable(ctx); err != nil {
			return fmt.Errorf("fakewa reachable: %w", err)
		}
		w.End = time.Now()
		refused := r.fakewaCountSince(ctx, before, func(s fakewa.Stats) int64 { return s.Refused })
		w.Detail += fmt.Sprintf("; %s dials and logins refused; reachable again after %s", refused, w.End.Sub(w.Start).Round(time.Millisecond))
		return nil
	}, nil
}

// fakewaCountSince says how much the count of fakewa's stats grew since before (for a fault
// window's detail at its end), "unknown" when fakewa's stats cannot be read then.
func (r *runner) fakewaCountSince(ctx context.Context, before fakewa.Stats, count func(fakewa.Stats) int64) string {
	after, err := r.w.wa.Stats(ctx)
	if err != nil {
		return "unknown"
	}
	return fmt.Sprint(count(after) - count(before))
}

// onlineShare picks the sessions a WhatsApp fault of wf's share acts on (share 1 when it names
// none): that share of this runner's online sessions, the first by session id (ids), out of
// online, their devices by session id. Every WhatsApp fault on a share of the sessions picks them so.
func (r *runner) onlineShare(wf *scenario.WhatsAppFault) (share float64, ids []string, online map[string]string) {
	share = 1.0
	if wf.Share != nil {
		share = *wf.Share
	}
	online = r.ownOnline()
	ids = make([]string, 0, len(online))
	for id := range online {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return share, ids[:int(math.Round(share*float64(len(ids))))], online
}

// shareOfOnline is onlineShare for a fault that acts on devices (fakewa's Unreachable, Silence):
// online counts the online sessions; jids are the picked sessions' devices when the share is
// below 1, none (the whole server) at share 1.
func (r *runner) shareOfOnline(wf *scenario.WhatsAppFault) (share float64, ids []string, online int, jids []types.JID, err error) {
	share, ids, devices := r.onlineShare(wf)
	if share < 1 {
		for _, id := range ids {
			j, err := types.ParseJID(devices[id])
			if err != nil {
				return 0, nil, 0, nil, fmt.Errorf("device %q: %w", devices[id], err)
			}
			jids = append(jids, j)
		}
	}
	return share, ids, len(devices), jids, nil
}

// redisLossWindow is how long before the gateway's SIGKILL a redis-restart-while-gateway-down
// turns Redis's AOF off: the writes of that last second are lost at the restart, as
// appendfsync everysec may lose them.
const redisLossWindow = time.Second

// restartRedisWhileGatewayDown plays redis-restart-while-gateway-down: AOF off (what the gateway
// writes from then on is lost), a second later the gateway SIGKILLed, redis-server SIGKILLed and
// started again from its AOF while no gateway runs; the heal, after the fault's duration, starts
// the gateway again, whose start must notice that Redis restarted and lost its last writes.
func (r *runner) restartRedisWhileGatewayDown(ctx context.Context, w *FaultWindow) (func(context.Context) error, error) {
	if r.w.cluster != nil {
		return nil, errSkipped{"redis-restart-while-gateway-down plays with one gateway; this world runs replicas"}
	}
	if gw := r.gatewayChild(); gw == nil || gw.exited() {
		return nil, errors.New("no running gateway process to stop")
	}
	rdb, err := r.redisClient()
	if err != nil {
		return nil, err
	}
	kept, err := rdb.DBSize(ctx).Result()
	if err == nil {
		err = rdb.ConfigSet(ctx, "appendonly", "no").Err()
	}
	rdb.Close()
	if err != nil {
		return nil, fmt.Errorf("turning AOF off: %w", err)
	}
	start := time.Now()
	select {
	case <-time.After(redisLossWindow):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	startGateway, err := r.stopGateway(ctx, syscall.SIGKILL, false, w)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	outboxBefore, emittedBefore := w.OutboxBefore, w.EmittedBefore
	startRedis, err := r.killRedis(ctx, false, w)
	if err == nil {
		err = startRedis(ctx)
	}
	if err != nil {
		// Leave no world without its gateway: start it again before reporting the fault.
		return nil, errors.Join(fmt.Errorf("redis-server: %w", err), startGateway(ctx))
	}
	redisDetail := w.Detail
	w.Start, w.End, w.OutboxBefore, w.EmittedBefore = start, time.Time{}, outboxBefore, emittedBefore
	return func(ctx context.Context) error {
		err := startGateway(ctx)
		w.Detail = fmt.Sprintf("AOF off with %d keys in Redis, %s later the gateway: %s; redis-server while no gateway ran: %s",
			kept, redisLossWindow, w.Detail, redisDetail)
		return err
	}, nil
}
