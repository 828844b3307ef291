package fakelaravel

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"wagate/gateway/laravel"
)

// Endpoint names of incoming messages and receipts.
const (
	EndpointMessage      = "message"       // POST /api/whatsapp/message
	EndpointReceipt      = "receipt"       // POST /api/whatsapp/receipt
	EndpointMessageBatch = "message_batch" // POST /api/whatsapp/messages/batch
	EndpointReceiptBatch = "receipt_batch" // POST /api/whatsapp/receipts/batch
)

// PathMessages is the admin ground truth of messages and receipts: GET, ?session_id= optional.
const PathMessages = "/_fake/messages"

// messagesSchema is what the Laravel migration for messages would create: a message is stored
// once per (session_id, message_id) and counts how often it was posted; a receipt is one row per
// (session_id, message_id, sender) whose status only moves forward.
const messagesSchema = `
CREATE TABLE IF NOT EXISTS whatsapp_messages (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	session_id  VARCHAR(64) NOT NULL,
	message_id  VARCHAR(128) NOT NULL,
	chat        VARCHAR(128) NOT NULL,
	sender      VARCHAR(128) NOT NULL,
	from_me     TINYINT(1) NOT NULL DEFAULT 0,
	push_name   VARCHAR(255) NOT NULL DEFAULT '',
	type        VARCHAR(16) NOT NULL,
	body        TEXT NOT NULL DEFAULT '',
	quote       VARCHAR(128) NOT NULL DEFAULT '',
	react_to    VARCHAR(128) NOT NULL DEFAULT '',
	media       TEXT NOT NULL DEFAULT '',
	sent_at     DATETIME NOT NULL,
	sequence    INTEGER NOT NULL,
	deliveries  INTEGER NOT NULL DEFAULT 1,
	created_at  DATETIME NOT NULL,
	UNIQUE (session_id, message_id)
);
CREATE TABLE IF NOT EXISTS whatsapp_receipts (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	session_id  VARCHAR(64) NOT NULL,
	message_id  VARCHAR(128) NOT NULL,
	chat        VARCHAR(128) NOT NULL DEFAULT '',
	sender      VARCHAR(128) NOT NULL DEFAULT '',
	status      VARCHAR(16) NOT NULL,
	status_rank INTEGER NOT NULL,
	sequence    INTEGER NOT NULL,
	receipt_at  DATETIME NOT NULL,
	created_at  DATETIME NOT NULL,
	updated_at  DATETIME NOT NULL,
	UNIQUE (session_id, message_id, sender)
);`

const (
	insertMessageSQL = `INSERT INTO whatsapp_messages
	(session_id, message_id, chat, sender, from_me, push_name, type, body, quote, react_to, media, sent_at, sequence, created_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (session_id, message_id) DO UPDATE SET deliveries = whatsapp_messages.deliveries + 1
	RETURNING deliveries`
	upsertReceiptSQL = `INSERT INTO whatsapp_receipts
	(session_id, message_id, chat, sender, status, status_rank, sequence, receipt_at, created_at, updated_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (session_id, message_id, sender) DO UPDATE SET
		status = excluded.status, status_rank = excluded.status_rank, sequence = excluded.sequence,
		receipt_at = excluded.receipt_at, updated_at = excluded.updated_at
	WHERE excluded.status_rank > whatsapp_receipts.status_rank`
)

// StoredMessage is a message as Laravel stored it: Deliveries counts the requests that carried
// it (more than 1: the gateway sent a duplicate, stored once).
type StoredMessage struct {
	laravel.MessageItem
	Deliveries int       `json:"deliveries"`
	StoredAt   time.Time `json:"stored_at"`
}

// StoredReceipt is a sent message's furthest status for one recipient.
type StoredReceipt struct {
	laravel.ReceiptItem
	StoredAt  time.Time `json:"stored_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// MessagesState is the answer of GET /_fake/messages: every stored message in the order it was
// first stored, and every receipt row.
type MessagesState struct {
	Messages []StoredMessage `json:"messages"`
	Receipts []StoredReceipt `json:"receipts"`
}

// messageKind says which of the two item kinds a request carries.
type messageKind int

const (
	kindMessageItem messageKind = iota
	kindReceiptItem
)

// applyCounts are the per-item outcomes of writing messages or receipts.
type applyCounts struct {
	updated, stale, failed int
	errors                 []laravel.ItemError
}

// applyMessages writes messages or receipts in one transaction: a new message is stored (updated),
// a known one only counted (stale); a receipt is applied only when it moves the status forward
// (updated), otherwise stale. With createUnknown false an item of a session Laravel does not know
// fails. When rec is set, the answer is stored under its idempotency key in the same transaction.
func (s *store) applyMessages(ctx context.Context, kind messageKind, msgs []laravel.MessageItem, rcpts []laravel.ReceiptItem,
	createUnknown bool, rec *batchRecord, answer func(applyCounts) ([]byte, error), now time.Time) (applyCounts, []byte, error) {
	var res applyCounts
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return res, nil, fmt.Errorf("store: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	ts := dbTime(now)
	known := func(sessionID string) (bool, error) {
		if createUnknown {
			return true, nil
		}
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM whatsapp_sessions WHERE session_id = ?`, sessionID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return false, nil
		}
		return err == nil, err
	}
	n := len(msgs)
	if kind == kindReceiptItem {
		n = len(rcpts)
	}
	for i := range n {
		sessionID := ""
		if kind == kindMessageItem {
			sessionID = msgs[i].SessionID
		} else {
			sessionID = rcpts[i].SessionID
		}
		ok, err := known(sessionID)
		if err != nil {
			return res, nil, fmt.Errorf("store: exists %s: %w", sessionID, err)
		}
		if !ok {
			res.failed++
			res.errors = append(res.errors, laravel.ItemError{SessionID: sessionID, Error: "unknown session"})
			continue
		}
		if kind == kindMessageItem {
			m := msgs[i]
			media := ""
			if m.Media != nil {
				b, err := json.Marshal(m.Media)
				if err != nil {
					return res, nil, fmt.Errorf("store: media of %s: %w", m.MessageID, err)
				}
				media = string(b)
			}
			var deliveries int
			if err := tx.QueryRowContext(ctx, insertMessageSQL, m.SessionID, m.MessageID, m.Chat, m.Sender, m.FromMe, m.PushName,
				string(m.Type), m.Text, m.Quote, m.ReactTo, media, dbTime(m.Timestamp), m.Sequence, ts).Scan(&deliveries); err != nil {
				return res, nil, fmt.Errorf("store: message %s/%s: %w", m.SessionID, m.MessageID, err)
			}
			if deliveries == 1 {
				res.updated++
			} else {
				res.stale++
			}
			continue
		}
		r := rcpts[i]
		out, err := tx.ExecContext(ctx, upsertReceiptSQL, r.SessionID, r.MessageID, r.Chat, r.Sender, string(r.Status), r.Status.Rank(),
			r.Sequence, dbTime(r.Timestamp), ts, ts)
		if err != nil {
			return res, nil, fmt.Errorf("store: receipt %s/%s: %w", r.SessionID, r.MessageID, err)
		}
		if affected, err := out.RowsAffected(); err != nil {
			return res, nil, fmt.Errorf("store: rows affected: %w", err)
		} else if affected > 0 {
			res.updated++
		} else {
			res.stale++
		}
	}
	body, err := answer(res)
	if err != nil {
		return res, nil, err
	}
	if err := recordAndCommit(ctx, tx, rec, body, ts); err != nil {
		return res, nil, err
	}
	return res, body, nil
}

// messages reads the ground truth, of one session or (sessionID "") of all.
func (s *store) messages(ctx context.Context, sessionID string) (MessagesState, error) {
	st := MessagesState{Messages: []StoredMessage{}, Receipts: []StoredReceipt{}}
	rows, err := s.r.QueryContext(ctx, `SELECT session_id, message_id, chat, sender, from_me, push_name, type, body, quote, react_to,
		media, sent_at, sequence, deliveries, created_at FROM whatsapp_messages WHERE ? = '' OR session_id = ? ORDER BY id`, sessionID, sessionID)
	if err != nil {
		return st, fmt.Errorf("store: read messages: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var m StoredMessage
		var typ, media string
		var sent, stored dbTimeValue
		if err := rows.Scan(&m.SessionID, &m.MessageID, &m.Chat, &m.Sender, &m.FromMe, &m.PushName, &typ, &m.Text, &m.Quote,
			&m.ReactTo, &media, &sent, &m.Sequence, &m.Deliveries, &stored); err != nil {
			return st, fmt.Errorf("store: scan message: %w", err)
		}
		if media != "" {
			m.Media = &laravel.MessageMedia{}
			if err := json.Unmarshal([]byte(media), m.Media); err != nil {
				return st, fmt.Errorf("store: media of %s: %w", m.MessageID, err)
			}
		}
		m.Type, m.Timestamp, m.StoredAt = laravel.MessageType(typ), sent.t, stored.t
		st.Messages = append(st.Messages, m)
	}
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("store: read messages: %w", err)
	}
	rrows, err := s.r.QueryContext(ctx, `SELECT session_id, message_id, chat, sender, status, sequence, receipt_at, created_at, updated_at
		FROM whatsapp_receipts WHERE ? = '' OR session_id = ? ORDER BY id`, sessionID, sessionID)
	if err != nil {
		return st, fmt.Errorf("store: read receipts: %w", err)
	}
	defer rrows.Close()
	for rrows.Next() {
		var r StoredReceipt
		var status string
		var at, created, updated dbTimeValue
		if err := rrows.Scan(&r.SessionID, &r.MessageID, &r.Chat, &r.Sender, &status, &r.Sequence, &at, &created, &updated); err != nil {
			return st, fmt.Errorf("store: scan receipt: %w", err)
		}
		r.Status, r.Timestamp, r.StoredAt, r.UpdatedAt = laravel.ReceiptStatus(status), at.t, created.t, updated.t
		st.Receipts = append(st.Receipts, r)
	}
	return st, rrows.Err()
}

// dbTimeValue scans a DATETIME column: the SQLite driver yields a time.Time for values it
// recognises and the stored text otherwise.
type dbTimeValue struct{ t time.Time }

func (v *dbTimeValue) Scan(src any) error {
	switch x := src.(type) {
	case time.Time:
		v.t = x.UTC()
	case string:
		t, err := time.Parse(timeLayout, x)
		if err != nil {
			return fmt.Errorf("datetime %q: %w", x, err)
		}
		v.t = t.UTC()
	case []byte:
		return v.Scan(string(x))
	case nil:
		v.t = time.Time{}
	default:
		return fmt.Errorf("datetime of type %T", src)
	}
	return nil
}

// Messages returns the stored messages and receipts, of one session or ("") of all. In front of a
// real app (Upstream) they are read from its database: laravel/'s migration creates the same
// whatsapp_messages and whatsapp_receipts tables.
func (s *Server) Messages(ctx context.Context, sessionID string) (MessagesState, error) {
	return s.store.messages(ctx, sessionID)
}

// serveMessagesAdmin answers GET /_fake/messages.
func (s *Server) serveMessagesAdmin(w http.ResponseWriter, r *http.Request) {
	sessionID := r.URL.Query().Get("session_id")
	if sessionID != "" && !laravel.ValidSessionID(sessionID) {
		writeJSON(w, http.StatusUnprocessableEntity, laravel.ErrorBody{Message: "Invalid session id."}, nil)
		return
	}
	st, err := s.Messages(r.Context(), sessionID)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, laravel.ErrorBody{Message: err.Error()}, nil)
		return
	}
	writeJSON(w, http.StatusOK, st, nil)
}

// decodeMessageItem decodes and validates one message item; field prefixes Laravel's dotted names.
func decodeMessageItem(raw []byte, field string) (laravel.MessageItem, *laravel.ValidationError) {
	var m laravel.MessageItem
	if err := json.Unmarshal(raw, &m); err != nil {
		return m, &laravel.ValidationError{Message: validationMessage, Errors: map[string][]string{field: {"The item is invalid: " + err.Error() + "."}}}
	}
	if err := m.Validate(); err != nil {
		return m, &laravel.ValidationError{Message: validationMessage, Errors: map[string][]string{field: {err.Error() + "."}}}
	}
	return m, nil
}

func decodeReceiptItem(raw []byte, field string) (laravel.ReceiptItem, *laravel.ValidationError) {
	var r laravel.ReceiptItem
	if err := json.Unmarshal(raw, &r); err != nil {
		return r, &laravel.ValidationError{Message: validationMessage, Errors: map[string][]string{field: {"The item is invalid: " + err.Error() + "."}}}
	}
	if err := r.Validate(); err != nil {
		return r, &laravel.ValidationError{Message: validationMessage, Errors: map[string][]string{field: {err.Error() + "."}}}
	}
	return r, nil
}

// decodeMessageItems decodes a legacy body (one item) or a batch body ({"messages": [...]} or
// {"receipts": [...]}).
func (s *Server) decodeMessageItems(kind messageKind, body []byte, batch bool) ([]laravel.MessageItem, []laravel.ReceiptItem, *laravel.ValidationError) {
	if _, verr := parseObject(body); verr != nil {
		return nil, nil, verr
	}
	var raws []json.RawMessage
	listKey := "messages"
	if kind == kindReceiptItem {
		listKey = "receipts"
	}
	if batch {
		var wrapper map[string]json.RawMessage
		if err := json.Unmarshal(body, &wrapper); err != nil {
			return nil, nil, bodyError("The body must be a JSON object.")
		}
		list, ok := wrapper[listKey]
		if !ok || string(list) == "null" {
			return nil, nil, &laravel.ValidationError{Message: validationMessage, Errors: map[string][]string{listKey: {fmt.Sprintf("The %s field is required.", listKey)}}}
		}
		if err := json.Unmarshal(list, &raws); err != nil {
			return nil, nil, &laravel.ValidationError{Message: validationMessage, Errors: map[string][]string{listKey: {fmt.Sprintf("The %s must be an array.", listKey)}}}
		}
		switch {
		case len(raws) == 0:
			return nil, nil, &laravel.ValidationError{Message: validationMessage, Errors: map[string][]string{listKey: {fmt.Sprintf("The %s must have at least 1 items.", listKey)}}}
		case len(raws) > s.cfg.MaxItems:
			return nil, nil, &laravel.ValidationError{Message: validationMessage, Errors: map[string][]string{listKey: {fmt.Sprintf("The %s may not have more than %d items.", listKey, s.cfg.MaxItems)}}}
		}
	} else {
		raws = []json.RawMessage{body}
	}
	var msgs []laravel.MessageItem
	var rcpts []laravel.ReceiptItem
	for i, raw := range raws {
		field := "body"
		if batch {
			field = listKey + "." + strconv.Itoa(i)
		}
		if kind == kindMessageItem {
			m, verr := decodeMessageItem(raw, field)
			if verr != nil {
				return nil, nil, verr
			}
			msgs = append(msgs, m)
		} else {
			r, verr := decodeReceiptItem(raw, field)
			if verr != nil {
				return nil, nil, verr
			}
			rcpts = append(rcpts, r)
		}
	}
	return msgs, rcpts, nil
}

// legacyMessage applies one message or receipt (POST /api/whatsapp/message, /receipt): 200 when
// stored or already stored, 404 for an unknown session when unknown sessions are rejected.
func (s *Server) legacyMessage(ctx context.Context, kind messageKind, req apiRequest, burn func(int)) *response {
	msgs, rcpts, verr := s.decodeMessageItems(kind, req.body, false)
	if verr != nil {
		return jsonResponse(http.StatusUnprocessableEntity, verr)
	}
	burn(1)
	res, _, err := s.store.applyMessages(ctx, kind, msgs, rcpts, !s.cfg.RejectUnknownSessions, nil,
		func(applyCounts) ([]byte, error) { return nil, nil }, time.Now())
	if err != nil {
		s.log.Error("fakelaravel: legacy message write", "err", err)
		return messageResponse(http.StatusInternalServerError, "Server Error")
	}
	if res.failed > 0 {
		resp := messageResponse(http.StatusNotFound, "Session not found.")
		resp.items, resp.failed = 1, 1
		return resp
	}
	resp := jsonResponse(http.StatusOK, laravel.Ack{Success: true})
	resp.applied, resp.items, resp.updated, resp.stale = true, 1, res.updated, res.stale
	return resp
}

// messageBatch applies a message or receipt batch: Idempotency-Key (replay, 409 in flight, 422
// on a different body), validation (422, nothing applied), then one transaction.
func (s *Server) messageBatch(ctx context.Context, kind messageKind, req apiRequest, burn func(int)) *response {
	rec, done := s.claimBatch(ctx, req)
	if done != nil {
		return done
	}
	defer s.release(rec.key)
	msgs, rcpts, verr := s.decodeMessageItems(kind, req.body, true)
	if verr != nil {
		return jsonResponse(http.StatusUnprocessableEntity, verr)
	}
	items := len(msgs) + len(rcpts)
	burn(items)
	answer := func(c applyCounts) ([]byte, error) {
		errs := c.errors
		if errs == nil {
			errs = []laravel.ItemError{}
		}
		return json.Marshal(laravel.BatchResult{Success: c.failed == 0, Updated: c.updated, Stale: c.stale, Failed: c.failed, Errors: errs})
	}
	res, body, err := s.store.applyMessages(ctx, kind, msgs, rcpts, !s.cfg.RejectUnknownSessions,
		rec, answer, time.Now())
	if err != nil {
		s.log.Error("fakelaravel: apply message batch", "err", err)
		return messageResponse(http.StatusInternalServerError, "Server Error")
	}
	return &response{status: http.StatusOK, body: body, applied: true,
		items: items, updated: res.updated, stale: res.stale, failed: res.failed}
}

// routeMessages serves the message and receipt endpoints; nil for any other endpoint.
func (s *Server) routeMessages(ctx context.Context, req apiRequest, burn func(int)) *response {
	switch req.endpoint {
	case EndpointMessage:
		return s.legacyMessage(ctx, kindMessageItem, req, burn)
	case EndpointReceipt:
		return s.legacyMessage(ctx, kindReceiptItem, req, burn)
	case EndpointMessageBatch:
		return s.messageBatch(ctx, kindMessageItem, req, burn)
	case EndpointReceiptBatch:
		return s.messageBatch(ctx, kindReceiptItem, req, burn)
	}
	return nil
}

// messageEndpointOf names the message and receipt endpoints; "" for any other path.
func messageEndpointOf(path string) string {
	switch path {
	case laravel.PathMessage:
		return EndpointMessage
	case laravel.PathReceipt:
		return EndpointReceipt
	case laravel.PathMessageBatch:
		return EndpointMessageBatch
	case laravel.PathReceiptBatch:
		return EndpointReceiptBatch
	}
	return ""
}
