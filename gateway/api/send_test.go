package api_test

import (
	"testing"
	"testing/synctest"

	"wagate/gateway/sendonce"
)

// A send retried with the same Idempotency-Key is sent once and answered the first answer; the
// key reused for another message is refused; a send that failed frees its key so the retry sends;
// other keys and unkeyed requests send each time.
func TestASendRetriedWithTheSameIdempotencyKeyIsSentOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		defer r.close()
		r.pair("s1")
		body := `{"to":"+15550001111","text":"hola","quote":"3EB0QUOTED"}`
		key := []string{"Idempotency-Key", "order-42"}

		// Laravel does not consider the session active yet: the send fails and frees the key.
		if resp := r.do("POST", "/sessions/s1/messages", body, key...); resp.code != 409 || resp.errorCode(t) != "session_not_active" {
			t.Fatalf("inactive: %d %s", resp.code, resp.body)
		}
		r.activity.active["s1"] = true
		first := r.do("POST", "/sessions/s1/messages", body, key...)
		v := first.json(t)
		if first.code != 200 || v["message_id"] != sendonce.MessageID("s1", "order-42") || v["quote"] != "3EB0QUOTED" || first.header.Get("Idempotent-Replayed") != "" {
			t.Fatalf("first keyed send: %d %s %v, want the key's message id and the quote", first.code, first.body, first.header)
		}
		for range 2 {
			again := r.do("POST", "/sessions/s1/messages", body, key...)
			if again.code != 200 || string(again.body) != string(first.body) || again.header.Get("Idempotent-Replayed") != "true" {
				t.Fatalf("retry: %d %s (replayed %q), want the first answer %s", again.code, again.body, again.header.Get("Idempotent-Replayed"), first.body)
			}
		}
		if resp := r.do("POST", "/sessions/s1/messages", `{"to":"+15550001111","text":"otra cosa"}`, key...); resp.code != 422 || resp.errorCode(t) != "idempotency_key_reused" {
			t.Fatalf("key reused for another text: %d %s", resp.code, resp.body)
		}
		if sent := r.driver.Conn("s1").Sent(); len(sent) != 1 {
			t.Fatalf("sent %q, want one message for one key", sent)
		}
		r.do("POST", "/sessions/s1/messages", body, "Idempotency-Key", "order-43")
		r.do("POST", "/sessions/s1/messages", body)
		r.do("POST", "/sessions/s1/messages", body)
		if sent := r.driver.Conn("s1").Sent(); len(sent) != 4 {
			t.Fatalf("sent %d messages, want 4: one per key and one per unkeyed request", len(sent))
		}
	})
}
