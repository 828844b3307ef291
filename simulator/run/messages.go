package run

import (
	"context"
	"time"

	"wagate/simulator/truth"
)

// messagesLimit bounds the wait for Laravel to store every message the gateway acknowledged to
// WhatsApp, after the session states converged.
const messagesLimit = 30 * time.Second

// judgeMessages compares the customers' messages (and the receipts fakewa sent) with what
// Laravel stored (fakelaravel's /_fake/messages), after waiting, bounded, for Laravel to hold
// every message the gateway acknowledged (truth.Messages.HeldBy); it records message_delivery_delay, receipt_delivery_delay and the
// messages_* counts (truth.Messages.Finish).
func (r *runner) judgeMessages(ctx context.Context) truth.MessagesTruth {
	m := r.phones.messages
	if m == nil || r.w.admin == nil {
		return truth.MessagesTruth{}
	}
	var stored []truth.Stored
	var receipts []truth.StoredReceipt
	deadline := time.Now().Add(messagesLimit)
	for {
		_ = r.phones.poll(ctx) // the receipts fakewa sent last, the messages the gateway acknowledged
		st, err := r.w.admin.GetMessages(ctx)
		if err != nil {
			r.log.Warn("reading Laravel's messages", "err", err)
		} else {
			stored, receipts = stored[:0], receipts[:0]
			for _, s := range st.Messages {
				stored = append(stored, truth.Stored{SessionID: s.SessionID, MessageID: s.MessageID, Chat: s.Chat,
					Sequence: s.Sequence, Deliveries: s.Deliveries, StoredAt: s.StoredAt})
			}
			for _, rc := range st.Receipts {
				receipts = append(receipts, truth.StoredReceipt{MessageID: rc.MessageID, Status: rc.Status, StoredAt: rc.StoredAt, UpdatedAt: rc.UpdatedAt})
			}
		}
		if (err == nil && m.HeldBy(stored)) || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	t := m.Finish(r.reg, stored, receipts)
	for _, p := range t.Problems {
		r.log.Warn("ground truth", "message", p)
	}
	if t.Written > 0 {
		r.log.Info("messages", "written", t.Written, "lost", t.Lost, "duplicated", t.Duplicated, "out_of_order", t.OutOfOrder)
	}
	return t
}
