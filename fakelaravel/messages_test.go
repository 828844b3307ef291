package fakelaravel

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"wagate/gateway/laravel"
)

func (h *harness) client() *laravel.Client {
	h.t.Helper()
	c, err := laravel.NewClient(laravel.ClientConfig{BaseURL: h.ts.URL, Token: testToken})
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

func (h *harness) messages(sessionID string) MessagesState {
	h.t.Helper()
	var st MessagesState
	r := h.do(http.MethodGet, PathMessages+"?session_id="+sessionID, "", nil)
	if r.status != http.StatusOK {
		h.t.Fatalf("GET %s: %d %s", PathMessages, r.status, r.body)
	}
	r.json(h.t, &st)
	return st
}

func customerText(session, id string, seq int64) laravel.MessageItem {
	return laravel.MessageItem{SessionID: session, MessageID: id, Chat: "5511977770001@s.whatsapp.net",
		Sender: "5511977770001@s.whatsapp.net", Type: laravel.MessageText, Text: "hola " + id,
		Timestamp: time.Unix(1_800_000_000+seq, 0).UTC(), Sequence: seq}
}

func sentReceipt(session, id string, status laravel.ReceiptStatus, seq int64) laravel.ReceiptItem {
	return laravel.ReceiptItem{SessionID: session, MessageID: id, Chat: "5511977770001@s.whatsapp.net",
		Sender: "5511977770001@s.whatsapp.net", Status: status, Timestamp: time.Unix(1_800_000_100+seq, 0).UTC(), Sequence: seq}
}

func TestALegacyMessageIsStoredOncePerSessionAndMessageIDHoweverOftenItIsPosted(t *testing.T) {
	h := newHarness(t, nil)
	c, ctx := h.client(), t.Context()
	for _, m := range []laravel.MessageItem{customerText("s1", "A1", 1), customerText("s1", "A1", 1), customerText("s1", "A2", 2), customerText("s2", "A1", 1)} {
		if err := c.PostMessage(ctx, m); err != nil {
			t.Fatalf("POST %s: %v", laravel.PathMessage, err)
		}
	}
	st := h.messages("s1")
	if len(st.Messages) != 2 {
		t.Fatalf("s1 has %d messages stored, want 2: %+v", len(st.Messages), st.Messages)
	}
	first := st.Messages[0]
	if first.MessageItem != customerText("s1", "A1", 1) || first.Deliveries != 2 || first.StoredAt.IsZero() {
		t.Fatalf("first stored message %+v, want A1 as posted, delivered twice", first)
	}
	if st.Messages[1].MessageID != "A2" || st.Messages[1].Deliveries != 1 {
		t.Fatalf("second stored message %+v", st.Messages[1])
	}
	if all := h.messages(""); len(all.Messages) != 3 {
		t.Fatalf("%d messages in all sessions, want 3 (A1 of s2 is another message)", len(all.Messages))
	}
	if e := h.srv.Stats().Endpoints[EndpointMessage]; e.Requests != 4 || e.Updated != 3 || e.Stale != 1 {
		t.Fatalf("message endpoint stats %+v, want 4 requests, 3 stored, 1 duplicate", e)
	}
}

func TestAReceiptOnlyMovesAMessagesStatusForward(t *testing.T) {
	h := newHarness(t, nil)
	c, ctx := h.client(), t.Context()
	for i, st := range []laravel.ReceiptStatus{laravel.ReceiptRead, laravel.ReceiptDelivered, laravel.ReceiptRead} {
		if err := c.PostReceipt(ctx, sentReceipt("s1", "OUT1", st, int64(i+1))); err != nil {
			t.Fatal(err)
		}
	}
	st := h.messages("s1")
	if len(st.Receipts) != 1 || st.Receipts[0].Status != laravel.ReceiptRead || st.Receipts[0].Sequence != 1 {
		t.Fatalf("receipts %+v, want OUT1 read (from the first receipt; the late delivered and the repeat ignored)", st.Receipts)
	}
	if err := c.PostReceipt(ctx, sentReceipt("s1", "OUT1", laravel.ReceiptPlayed, 4)); err != nil {
		t.Fatal(err)
	}
	if st := h.messages("s1"); st.Receipts[0].Status != laravel.ReceiptPlayed {
		t.Fatalf("played after read not applied: %+v", st.Receipts)
	}
	if e := h.srv.Stats().Endpoints[EndpointReceipt]; e.Updated != 2 || e.Stale != 2 {
		t.Fatalf("receipt endpoint stats %+v, want 2 applied and 2 stale", e)
	}
	var se *laravel.StatusError
	bad := sentReceipt("s1", "OUT2", "seen", 5)
	if err := c.PostReceipt(ctx, bad); !errors.As(err, &se) || se.Status != http.StatusUnprocessableEntity {
		t.Fatalf("unknown receipt status: %v, want 422", err)
	}
}

func TestMessageAndReceiptBatchesAreIdempotentByKeyAndValidatedWhole(t *testing.T) {
	h := newHarness(t, nil)
	c, ctx := h.client(), t.Context()
	if err := c.PostMessage(ctx, customerText("s1", "A1", 1)); err != nil {
		t.Fatal(err)
	}
	batch := laravel.MessageBatch{Messages: []laravel.MessageItem{customerText("s1", "A1", 1), customerText("s1", "A2", 2), customerText("s1", "A3", 3)}}
	res, err := c.PostMessageBatch(ctx, "key-1", batch)
	if err != nil {
		t.Fatal(err)
	}
	want := laravel.BatchResult{Success: true, Updated: 2, Stale: 1, Errors: []laravel.ItemError{}}
	if res.Success != want.Success || res.Updated != 2 || res.Stale != 1 || res.Failed != 0 {
		t.Fatalf("batch result %+v, want %+v", res, want)
	}
	again, err := c.PostMessageBatch(ctx, "key-1", batch)
	if err != nil || again.Updated != 2 || again.Stale != 1 {
		t.Fatalf("replay of key-1 answered %+v, %v; want the first answer", again, err)
	}
	if st := h.messages("s1"); len(st.Messages) != 3 || st.Messages[0].Deliveries != 2 || st.Messages[1].Deliveries != 1 {
		t.Fatalf("after a replayed batch: %+v, want A1 (twice), A2, A3 each stored once", st.Messages)
	}
	var se *laravel.StatusError
	other := laravel.MessageBatch{Messages: []laravel.MessageItem{customerText("s1", "A4", 4)}}
	if _, err := c.PostMessageBatch(ctx, "key-1", other); !errors.As(err, &se) || se.Status != http.StatusUnprocessableEntity {
		t.Fatalf("key-1 reused for another body: %v, want 422", err)
	}
	invalid := laravel.MessageBatch{Messages: []laravel.MessageItem{customerText("s1", "A5", 5), {SessionID: "s1", MessageID: "A6"}}}
	if _, err := c.PostMessageBatch(ctx, "key-2", invalid); !errors.As(err, &se) || se.Status != http.StatusUnprocessableEntity {
		t.Fatalf("batch with an invalid item: %v, want 422", err)
	}
	if st := h.messages("s1"); len(st.Messages) != 3 {
		t.Fatalf("an invalid batch stored %d messages, want none of it", len(st.Messages)-3)
	}
	r := h.do(http.MethodPost, laravel.PathReceiptBatch, `{"receipts":[]}`, map[string]string{laravel.HeaderIdempotencyKey: "key-3"})
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("empty receipt batch: %d %s, want 422", r.status, r.body)
	}
	rb := laravel.ReceiptBatch{Receipts: []laravel.ReceiptItem{sentReceipt("s1", "OUT1", laravel.ReceiptRead, 6), sentReceipt("s1", "OUT1", laravel.ReceiptDelivered, 7)}}
	rres, err := c.PostReceiptBatch(ctx, "key-4", rb)
	if err != nil || rres.Updated != 1 || rres.Stale != 1 {
		t.Fatalf("receipt batch answered %+v, %v; want read applied and the later delivered stale", rres, err)
	}
}

func TestMessagesOfUnknownSessionsFailWhenLaravelRejectsThem(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.RejectUnknownSessions = true })
	c, ctx := h.client(), t.Context()
	var se *laravel.StatusError
	if err := c.PostMessage(ctx, customerText("ghost", "A1", 1)); !errors.As(err, &se) || se.Status != http.StatusNotFound {
		t.Fatalf("legacy message of an unknown session: %v, want 404", err)
	}
	res, err := c.PostReceiptBatch(ctx, "key-1", laravel.ReceiptBatch{Receipts: []laravel.ReceiptItem{sentReceipt("ghost", "OUT1", laravel.ReceiptRead, 1)}})
	if err != nil || res.Success || res.Failed != 1 || len(res.Errors) != 1 || res.Errors[0].SessionID != "ghost" {
		b, _ := json.Marshal(res)
		t.Fatalf("receipt batch of an unknown session answered %s, %v; want the item failed by name", b, err)
	}
}

func TestAMessagesMediaMetadataIsStoredWithIt(t *testing.T) {
	h := newHarness(t, nil)
	m := customerText("s1", "IMG1", 1)
	m.Type, m.Text = laravel.MessageImage, "¿este?"
	m.Media = &laravel.MessageMedia{MimeType: "image/jpeg", FileLength: 10400, FileSHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}
	if err := h.client().PostMessage(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	st := h.messages("s1")
	if len(st.Messages) != 1 || st.Messages[0].Media == nil || *st.Messages[0].Media != *m.Media {
		t.Fatalf("stored %+v, want the image's metadata %+v", st.Messages, *m.Media)
	}
}
