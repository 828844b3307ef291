package run

import (
	"context"
	"errors"
	"fmt"
	"time"

	"wagate/gateway/laravel"
	"wagate/simulator/fakewa"
	"wagate/simulator/scenario"
)

// whatsappHandshakeCut plays WhatsApp's front closing sockets in the middle of the Noise handshake
// (whatsapp action "handshake-cut") for the fault's duration: every new connection is accepted and
// closed after the client's hello, before the server's (fakewa CutHandshakes), and the share's
// online sessions have their connections dropped at its start, so that their reconnects meet it.
// whatsmeow's handshake does not notice such a close by itself (it waits 20 s for the server's
// hello): the gateway must give the attempt up and reconnect on its backoff. The ground truth
// expects each dropped session disconnected, then connected again.
func (r *runner) whatsappHandshakeCut(ctx context.Context, flt scenario.Fault, w *FaultWindow) (func(context.Context) error, error) {
	if flt.Duration <= 0 {
		return nil, errors.New("a handshake cut needs a duration")
	}
	share, ids, online := r.onlineShare(flt.WhatsApp)
	before, err := r.w.wa.Stats(ctx)
	if err != nil {
		return nil, fmt.Errorf("fakewa stats: %w", err)
	}
	if err := r.w.wa.CutHandshakes(ctx, flt.Duration.Std()); err != nil {
		return nil, fmt.Errorf("fakewa cut handshakes: %w", err)
	}
	failed := 0
	for _, id := range ids {
		undo := r.ledger.Caused(id, laravel.StatusDisconnected, time.Now())
		r.ledger.Expect(id, laravel.StatusConnected)
		if err := r.phones.Drop(online[id]); err != nil {
			undo()
			failed++
			r.log.Debug("fault action", "action", "handshake-cut drop", "jid", online[id], "err", err)
		}
	}
	w.Detail = fmt.Sprintf("WhatsApp closing every new connection mid-handshake; %d of %d online sessions' connections dropped (share %.2f, %d failed)",
		len(ids), len(online), share, failed)
	// fakewa ends the cut by itself at the fault's duration.
	return func(ctx context.Context) error {
		w.End = time.Now()
		failedHandshakes := r.fakewaCountSince(ctx, before, func(s fakewa.Stats) int64 { return s.HandshakesFailed })
		w.Detail += fmt.Sprintf("; %s handshakes failed; answered again after %s", failedHandshakes, w.End.Sub(w.Start).Round(time.Millisecond))
		return nil
	}, nil
}
