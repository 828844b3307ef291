package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"wagate/gateway/sendonce"
	"wagate/gateway/session"
)

// IdempotencyKeyHeader names the header that makes a send idempotent.
const IdempotencyKeyHeader = "Idempotency-Key"

// ReplayedHeader is set to "true" on the answer of a send that repeated an earlier one.
const ReplayedHeader = "Idempotent-Replayed"

type messageRequest struct {
	To   string `json:"to"`
	Text string `json:"text"`
	// Quote is the id of the message this one replies to.
	Quote string `json:"quote,omitempty"`
	// QuoteFromMe says the quoted message is one the session sent (default: the phone's).
	QuoteFromMe bool `json:"quote_from_me,omitempty"`
}

type messageResponse struct {
	SessionID string `json:"session_id"`
	To        string `json:"to"`
	MessageID string `json:"message_id"`
	Quote     string `json:"quote,omitempty"`
}

// quotePattern is a WhatsApp message id.
var quotePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// sendKeyTimeout bounds writing a key's answer once the send is done (the client may be gone).
const sendKeyTimeout = 5 * time.Second

// sendMessage sends a text (a reply with quote). With an Idempotency-Key, the first request
// claims the key and sends with a message id derived from it; a retry gets the first answer
// (Idempotent-Replayed: true) and sends nothing, one while the first is still sending 409
// idempotency_in_flight, and the key reused with another body 422 idempotency_key_reused.
func (a *api) sendMessage(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok || a.routed(w, r, id) {
		return
	}
	key, keyed := "", false
	if v := r.Header[IdempotencyKeyHeader]; len(v) > 0 {
		key, keyed = v[0], true
		if len(v) > 1 || !sendonce.ValidKey(key) {
			writeError(w, http.StatusBadRequest, "invalid_idempotency_key", fmt.Sprintf("%s must be one value of 1 to %d printable ASCII characters", IdempotencyKeyHeader, sendonce.MaxKeyLen))
			return
		}
	}
	var req messageRequest
	if !a.readJSON(w, r, &req) {
		return
	}
	if !phonePattern.MatchString(req.To) {
		writeError(w, http.StatusUnprocessableEntity, "invalid_phone", "to must be a phone number in international format: 7-15 digits, country code first, optional +")
		return
	}
	if strings.TrimSpace(req.Text) == "" || utf8.RuneCountInString(req.Text) > MaxTextLen {
		writeError(w, http.StatusUnprocessableEntity, "invalid_text", fmt.Sprintf("text must be 1 to %d characters", MaxTextLen))
		return
	}
	if req.Quote != "" && !quotePattern.MatchString(req.Quote) {
		writeError(w, http.StatusUnprocessableEntity, "invalid_quote", "quote must be a message id: 1 to 128 letters, digits, _ or -")
		return
	}
	msg := session.OutgoingText{Phone: strings.TrimPrefix(req.To, "+"), Text: req.Text, Quote: req.Quote, QuoteFromMe: req.QuoteFromMe}
	if !keyed {
		if resp, ok := a.send(w, r, id, msg); ok {
			writeJSON(w, http.StatusOK, resp)
		}
		return
	}

	fp := sendonce.Fingerprint(msg.Phone, msg.Text, msg.Quote, fmt.Sprint(msg.QuoteFromMe))
	out, err := a.cfg.SendKeys.Begin(r.Context(), id, key, fp)
	if err != nil {
		a.log.Warn("idempotency key: claim failed", "session_id", id, "err", err)
		writeError(w, http.StatusServiceUnavailable, "redis_unavailable", "could not read or claim the Idempotency-Key")
		return
	}
	switch out.State {
	case sendonce.Done:
		w.Header().Set(ReplayedHeader, "true")
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(out.Answer)
		return
	case sendonce.InFlight:
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusConflict, "idempotency_in_flight", "a send with this Idempotency-Key is in flight; retry to get its answer")
		return
	case sendonce.Mismatch:
		writeError(w, http.StatusUnprocessableEntity, "idempotency_key_reused", "this Idempotency-Key was used for another message in this session")
		return
	}
	msg.ID = sendonce.MessageID(id, key)
	resp, ok := a.send(w, r, id, msg)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), sendKeyTimeout)
	defer cancel()
	if !ok {
		if err := a.cfg.SendKeys.Abandon(ctx, id, key); err != nil {
			a.log.Warn("idempotency key: freeing it after a failed send failed (a retry waits for its in-flight claim to expire)", "session_id", id, "err", err)
		}
		return
	}
	body, err := json.Marshal(resp)
	if err != nil {
		a.log.Error("idempotency key: encoding the answer", "err", err)
	} else if err := a.cfg.SendKeys.Finish(ctx, id, key, fp, append(body, '\n')); err != nil {
		// Sent, answer not kept: a retry after the in-flight claim expires sends again with the
		// same message id, which the recipient deduplicates.
		a.log.Warn("idempotency key: storing the answer failed", "session_id", id, "err", err)
	}
	writeJSON(w, http.StatusOK, resp)
}

// send checks the session (exists, active in Laravel) and sends msg; on failure it has answered.
func (a *api) send(w http.ResponseWriter, r *http.Request, id string, msg session.OutgoingText) (messageResponse, bool) {
	if _, err := a.cfg.Reader.Get(r.Context(), id); err != nil {
		a.sessionError(w, r, err)
		return messageResponse{}, false
	}
	active, err := a.cfg.Activity.IsSessionActive(r.Context(), id)
	if err != nil {
		a.log.Warn("isSessionActive failed", "session_id", id, "err", err)
		writeError(w, http.StatusBadGateway, "activity_check_failed", "could not check with Laravel whether the session is active")
		return messageResponse{}, false
	}
	if !active {
		writeError(w, http.StatusConflict, "session_not_active", "Laravel does not consider this session active (enabled and connected)")
		return messageResponse{}, false
	}
	msgID, err := a.cfg.Sessions.SendText(r.Context(), id, msg)
	if err != nil {
		a.sessionError(w, r, err)
		return messageResponse{}, false
	}
	return messageResponse{SessionID: id, To: msg.Phone, MessageID: msgID, Quote: msg.Quote}, true
}
