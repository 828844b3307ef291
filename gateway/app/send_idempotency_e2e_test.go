package app_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"wagate/gateway/config"
	"wagate/gateway/laravel"
	"wagate/gateway/sendonce"
	"wagate/internal/proctest"
	"wagate/internal/redistest"
	"wagate/simulator/fakewa"
)

// keyedSend posts a send with an Idempotency-Key and returns the status, the message id and
// whether the answer was a replay.
func keyedSend(c *client, session, key string, body map[string]string) (int, string, bool) {
	c.t.Helper()
	var out struct {
		MessageID string `json:"message_id"`
	}
	code, header := c.callWith("POST", "/sessions/"+session+"/messages", http.Header{"Idempotency-Key": {key}}, body, &out)
	return code, out.MessageID, header.Get("Idempotent-Replayed") == "true"
}

// Batch mode on a real redis-server: a send retried with the same Idempotency-Key, right away
// and after a gateway restart, is sent to WhatsApp once (fakewa acks one message), every answer
// names the same message id, and that message's delivery and read receipts reach Laravel. The
// restart often comes while those receipts are in flight (whatsmeow handles them as the stop
// closes the socket, and its ack cannot go out): they reach Laravel because fakewa, as WhatsApp,
// delivers a receipt again at the next login until the device acks it (it sent each once before,
// and this test missed the read receipt in about 1 run of 16).
func TestBatchModeASendRetriedWithTheSameIdempotencyKeyIsSentOnceAcrossARestart(t *testing.T) {
	redis := redistest.StartServer(t, redistest.Options{AppendOnly: true})
	w := newWorld(t, worldOptions{mode: config.ModeBatch, receipts: fakewa.ReceiptsDeliveredAndRead, configure: func(cfg *config.Config) {
		cfg.RedisEmbedded, cfg.RedisURL = false, "redis://"+redis.Addr
	}})
	ctx := context.Background()
	c := w.client()
	jid := startAndPair(t, ctx, w, c, "e2e_send_once", "15557770103")
	proctest.Eventually(t, "Laravel to consider the session active", 30*time.Second, func() (bool, string) {
		code, _, _ := keyedSend(w.client(), "e2e_send_once", "probe", map[string]string{"to": "+" + customerPhone, "text": "¿hola?"})
		return code == 200, fmt.Sprint(code)
	})

	body := map[string]string{"to": "+" + customerPhone, "text": "su pedido salió hoy"}
	code, first, replayed := keyedSend(w.client(), "e2e_send_once", "order-77", body)
	if code != 200 || first != sendonce.MessageID("e2e_send_once", "order-77") || replayed {
		t.Fatalf("first send: %d %q replayed=%v, want 200 with the key's message id", code, first, replayed)
	}
	code, again, replayed := keyedSend(w.client(), "e2e_send_once", "order-77", body)
	if code != 200 || again != first || !replayed {
		t.Fatalf("retry: %d %q replayed=%v, want the first answer replayed", code, again, replayed)
	}
	w.restartGateway(ctx)
	// The restored session connects again. Waiting for it also keeps the end of the test from
	// stopping the gateway in the middle of that connect's Noise handshake, where whatsmeow's
	// FrameSocket races with itself (its read pump and Close; -race failed 2 runs in 8).
	proctest.Eventually(t, "the session connected again after the restart", 30*time.Second, func() (bool, string) {
		var s sessionView
		code := w.client().call("GET", "/sessions/e2e_send_once", nil, &s)
		return code == 200 && s.Connected, fmt.Sprintf("%d %+v", code, s)
	})
	code, after, replayed := keyedSend(w.client(), "e2e_send_once", "order-77", body)
	if code != 200 || after != first || !replayed {
		t.Fatalf("retry after a restart: %d %q replayed=%v, want the first answer replayed", code, after, replayed)
	}

	acked := 0
	for _, e := range w.wa.Events() {
		if e.Kind == fakewa.EventMessageAcked && e.JID == jid.String() && e.MessageID == first {
			acked++
		}
	}
	if acked != 1 {
		t.Fatalf("fakewa acked %s %d times, want once", first, acked)
	}
	proctest.Eventually(t, "Laravel to store the read receipt of the sent message", 30*time.Second, func() (bool, string) {
		st, err := w.laravel.Messages(ctx, "e2e_send_once")
		for _, r := range st.Receipts {
			if r.MessageID == first && r.Status == laravel.ReceiptRead {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v %v", st.Receipts, err)
	})
}
