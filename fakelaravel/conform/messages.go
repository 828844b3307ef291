package conform

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"wagate/gateway/laravel"
)

// messageChecks check the message and receipt endpoints (Options.Messages): messages stored once
// per (session_id, message_id), receipts applied only forward, batches idempotent and validated.
// Black-box: every verdict comes from the answers.
func (r *runner) messageChecks() []check {
	return []check{
		{name: "messages: a legacy message posted twice is accepted twice (stored once)", run: r.checkLegacyMessageTwice},
		{name: "messages: a batch stores each message once per message id (duplicates stale, also across batches)", run: r.checkMessageBatchOnce},
		{name: "messages: a replayed key returns the stored response", run: r.checkMessageReplay},
		{name: "messages: a message without message_id is 422 and applies nothing", run: r.checkMessageInvalid},
		{name: "receipts: a receipt applies only when it moves the status forward (delivered < read < played)", run: r.checkReceiptsForward},
		{name: "receipts: a legacy receipt is accepted, a late one too (and ignored)", run: r.checkLegacyReceipts},
		{name: "messages: every message type is accepted, with quotes, reaction targets and media metadata", run: r.checkEveryMessageType},
		{name: "receipts: every status is accepted, with an empty chat and sender too", run: r.checkEveryReceiptStatus},
	}
}

func (r *runner) messageItem(sid, id string, seq int64) laravel.MessageItem {
	return laravel.MessageItem{SessionID: sid, MessageID: id, Chat: "5511977770001@s.whatsapp.net",
		Sender: "5511977770001@s.whatsapp.net", Type: laravel.MessageText, Text: "conform " + id,
		Timestamp: time.Now().UTC(), Sequence: seq}
}

func (r *runner) receiptItem(sid, id string, st laravel.ReceiptStatus, seq int64) laravel.ReceiptItem {
	return laravel.ReceiptItem{SessionID: sid, MessageID: id, Chat: "5511977770001@s.whatsapp.net",
		Sender: "5511977770001@s.whatsapp.net", Status: st, Timestamp: time.Now().UTC(), Sequence: seq}
}

func (r *runner) postMessages(ctx context.Context, key string, items ...laravel.MessageItem) (answer, laravel.BatchResult, error) {
	a, err := r.send(ctx, http.MethodPost, laravel.PathMessageBatch, mustJSON(laravel.MessageBatch{Messages: items}), sendOpts{key: key})
	if err != nil {
		return a, laravel.BatchResult{}, err
	}
	var res laravel.BatchResult
	return a, res, a.expect(http.StatusOK, &res)
}

func (r *runner) postReceipts(ctx context.Context, key string, items ...laravel.ReceiptItem) (laravel.BatchResult, error) {
	a, err := r.send(ctx, http.MethodPost, laravel.PathReceiptBatch, mustJSON(laravel.ReceiptBatch{Receipts: items}), sendOpts{key: key})
	if err != nil {
		return laravel.BatchResult{}, err
	}
	var res laravel.BatchResult
	return res, a.expect(http.StatusOK, &res)
}

func (r *runner) checkLegacyMessageTwice(ctx context.Context) error {
	m := r.messageItem(r.sid(), r.key(), 1)
	for i := range 2 {
		a, err := r.send(ctx, http.MethodPost, laravel.PathMessage, mustJSON(m), sendOpts{})
		if err != nil {
			return err
		}
		var ack laravel.Ack
		if err := a.expect(http.StatusOK, &ack); err != nil {
			return fmt.Errorf("post %d: %w", i+1, err)
		}
		if !ack.Success {
			return fmt.Errorf("post %d answered success false", i+1)
		}
	}
	// Sent again in a batch, the message is already stored.
	_, res, err := r.postMessages(ctx, r.key(), m)
	if err != nil {
		return err
	}
	return counts(res, 0, 1, 0)
}

func (r *runner) checkMessageBatchOnce(ctx context.Context) error {
	sid := r.sid()
	a, b := r.messageItem(sid, r.key(), 1), r.messageItem(sid, r.key(), 2)
	_, res, err := r.postMessages(ctx, r.key(), a, a, b)
	if err != nil {
		return err
	}
	if err := counts(res, 2, 1, 0); err != nil {
		return fmt.Errorf("batch with a duplicate: %w", err)
	}
	_, res, err = r.postMessages(ctx, r.key(), b, r.messageItem(sid, r.key(), 3))
	if err != nil {
		return err
	}
	if err := counts(res, 1, 1, 0); err != nil {
		return fmt.Errorf("second batch repeating one message: %w", err)
	}
	return nil
}

func (r *runner) checkMessageReplay(ctx context.Context) error {
	sid, key := r.sid(), r.key()
	m := r.messageItem(sid, r.key(), 1)
	_, res, err := r.postMessages(ctx, key, m)
	if err != nil {
		return err
	}
	if err := counts(res, 1, 0, 0); err != nil {
		return fmt.Errorf("first send: %w", err)
	}
	_, res, err = r.postMessages(ctx, key, m)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	if err := counts(res, 1, 0, 0); err != nil {
		return fmt.Errorf("replay did not return the stored response: %w", err)
	}
	return nil
}

func (r *runner) checkMessageInvalid(ctx context.Context) error {
	sid := r.sid()
	good, bad := r.messageItem(sid, r.key(), 1), r.messageItem(sid, "", 2)
	a, err := r.send(ctx, http.MethodPost, laravel.PathMessageBatch, mustJSON(laravel.MessageBatch{Messages: []laravel.MessageItem{good, bad}}), sendOpts{key: r.key()})
	if err != nil {
		return err
	}
	if err := a.expectValidation(""); err != nil {
		return err
	}
	_, res, err := r.postMessages(ctx, r.key(), good)
	if err != nil {
		return err
	}
	if err := counts(res, 1, 0, 0); err != nil {
		return fmt.Errorf("the invalid batch stored its valid message: %w", err)
	}
	return nil
}

func (r *runner) checkReceiptsForward(ctx context.Context) error {
	sid, id := r.sid(), r.key()
	for i, step := range []struct {
		status         laravel.ReceiptStatus
		updated, stale int
	}{
		{laravel.ReceiptRead, 1, 0},
		{laravel.ReceiptDelivered, 0, 1},
		{laravel.ReceiptRead, 0, 1},
		{laravel.ReceiptPlayed, 1, 0},
	} {
		res, err := r.postReceipts(ctx, r.key(), r.receiptItem(sid, id, step.status, int64(i+1)))
		if err != nil {
			return err
		}
		if err := counts(res, step.updated, step.stale, 0); err != nil {
			return fmt.Errorf("receipt %d (%s): %w", i+1, step.status, err)
		}
	}
	return nil
}

func (r *runner) checkLegacyReceipts(ctx context.Context) error {
	sid, id := r.sid(), r.key()
	for i, st := range []laravel.ReceiptStatus{laravel.ReceiptRead, laravel.ReceiptDelivered} {
		a, err := r.send(ctx, http.MethodPost, laravel.PathReceipt, mustJSON(r.receiptItem(sid, id, st, int64(i+1))), sendOpts{})
		if err != nil {
			return err
		}
		if err := a.expect(http.StatusOK, nil); err != nil {
			return fmt.Errorf("legacy %s receipt: %w", st, err)
		}
	}
	res, err := r.postReceipts(ctx, r.key(), r.receiptItem(sid, id, laravel.ReceiptRead, 3))
	if err != nil {
		return err
	}
	if err := counts(res, 0, 1, 0); err != nil {
		return fmt.Errorf("after legacy read then delivered, read again: %w", err)
	}
	return nil
}

// checkEveryMessageType sends one message of every type the gateway knows, shaped as its driver
// fills them (a reply's quote, a reaction's target, media metadata, a hash WhatsApp did not give,
// one written from the session's own account): an app refusing one would have the gateway
// dead-letter what a customer wrote.
func (r *runner) checkEveryMessageType(ctx context.Context) error {
	sid := r.sid()
	first := r.key()
	var items []laravel.MessageItem
	for i, typ := range laravel.MessageTypes {
		id := r.key()
		if i == 0 {
			id = first
		}
		m := r.messageItem(sid, id, int64(i+1))
		m.Type, m.PushName = typ, "Conform"
		switch typ {
		case laravel.MessageText:
			m.Quote = first
		case laravel.MessageReaction:
			m.Text, m.ReactTo = "👍", first
		case laravel.MessageImage, laravel.MessageVideo, laravel.MessageAudio:
			m.Media = &laravel.MessageMedia{MimeType: "image/jpeg", FileLength: 11000, FileSHA256: strings.Repeat("0f", 32)}
		case laravel.MessageDocument:
			m.Media = &laravel.MessageMedia{MimeType: "application/pdf", FileName: "factura 12.pdf", FileLength: 2048, FileSHA256: strings.Repeat("a1", 32)}
		case laravel.MessageSticker:
			m.Text, m.Media = "", &laravel.MessageMedia{MimeType: "image/webp"} // no length, no hash
		case laravel.MessageOther:
			m.Text, m.FromMe, m.PushName = "", true, ""
		}
		items = append(items, m)
	}
	_, res, err := r.postMessages(ctx, r.key(), items...)
	if err != nil {
		return err
	}
	return counts(res, len(items), 0, 0)
}

// checkEveryReceiptStatus sends one receipt of every status, for messages of their own, with the
// chat and sender empty (the contract allows it).
func (r *runner) checkEveryReceiptStatus(ctx context.Context) error {
	sid := r.sid()
	var items []laravel.ReceiptItem
	for i, st := range laravel.ReceiptStatuses {
		rc := r.receiptItem(sid, r.key(), st, int64(i+1))
		rc.Chat, rc.Sender = "", ""
		items = append(items, rc)
	}
	res, err := r.postReceipts(ctx, r.key(), items...)
	if err != nil {
		return err
	}
	return counts(res, len(items), 0, 0)
}
