package run

import (
	"context"
	"errors"
	"fmt"
	"time"

	"wagate/gateway/laravel"
	"wagate/simulator/scenario"
)

// silenceBackstop is how long after the fault's duration fakewa ends a silence by itself, should
// the heal never come.
const silenceBackstop = 10 * time.Second

// whatsappSilent plays WhatsApp going silent (whatsapp action "silent") for the fault's duration:
// with share 1 every connection stays open but is neither read nor answered and new dials are
// held; with a smaller share, that share of the online sessions' devices. The gateway notices
// only through whatsmeow's keepalive (its test-only waTestKeepalive shortens it): a silence
// longer than the keepalive's limit drops the connections and the sessions reconnect, their
// logins answered when the heal ends the silence; a shorter one passes unnoticed. The ground
// truth allows each affected session a disconnection and expects it connected in the end.
func (r *runner) whatsappSilent(ctx context.Context, flt scenario.Fault, w *FaultWindow) (func(context.Context) error, error) {
	if flt.Duration <= 0 {
		return nil, errors.New("a WhatsApp silence needs a duration")
	}
	share, ids, online, jids, err := r.shareOfOnline(flt.WhatsApp)
	if err != nil {
		return nil, err
	}
	at := time.Now()
	undos := make([]func(), 0, len(ids))
	for _, id := range ids {
		undos = append(undos, r.ledger.Caused(id, laravel.StatusDisconnected, at))
		r.ledger.Expect(id, laravel.StatusConnected)
	}
	silenced, err := r.w.wa.Silence(ctx, jids, flt.Duration.Std()+silenceBackstop)
	if err != nil {
		for _, u := range undos {
			u()
		}
		return nil, fmt.Errorf("fakewa silence: %w", err)
	}
	scope := "every connection and new dial"
	if share < 1 {
		scope = fmt.Sprintf("%d of %d online sessions' devices (share %.2f)", len(ids), online, share)
	}
	w.Detail = fmt.Sprintf("WhatsApp silent: %s neither read nor answered, nothing closed; %d connections silent", scope, silenced)
	return func(ctx context.Context) error {
		if err := r.w.wa.EndSilence(ctx); err != nil {
			return fmt.Errorf("fakewa end silence: %w", err)
		}
		w.End = time.Now()
		w.Detail += fmt.Sprintf("; answering again after %s", w.End.Sub(w.Start).Round(time.Millisecond))
		return nil
	}, nil
}
