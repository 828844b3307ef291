package laravelapp_test

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the app's SQLite database, written directly to create a known session

	"wagate/fakelaravel"
	"wagate/gateway/laravel"
)

const customerJID = "5511977770001@s.whatsapp.net"

// messageOf is a message item of session sid as the gateway sends it.
func messageOf(sid, id string, seq int64) laravel.MessageItem {
	return laravel.MessageItem{SessionID: sid, MessageID: id, Chat: customerJID, Sender: customerJID,
		PushName: "Ana", Type: laravel.MessageText, Text: "text " + id, Timestamp: time.Now().UTC(), Sequence: seq}
}

func receiptOf(sid, id string, st laravel.ReceiptStatus, seq int64) laravel.ReceiptItem {
	return laravel.ReceiptItem{SessionID: sid, MessageID: id, Chat: customerJID, Sender: customerJID,
		Status: st, Timestamp: time.Now().UTC(), Sequence: seq}
}

// front reads the app's database the way the simulator does for laravel.real runs.
func front(t *testing.T, a app) *fakelaravel.Server {
	t.Helper()
	f, err := fakelaravel.New(t.Context(), fakelaravel.Config{AdminToken: "front-admin",
		Upstream: &fakelaravel.Upstream{URL: a.url, DBPath: a.db, Workers: 2}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// postRaw posts body to path, signed as the gateway signs, and returns the status and the body.
func postRaw(t *testing.T, a app, path, key, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, a.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set(laravel.HeaderIdempotencyKey, key)
	}
	laravel.SignRequest(req, a.secret, []byte(body), time.Now())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func wantCounts(t *testing.T, what string, res laravel.BatchResult, updated, stale, failed int) {
	t.Helper()
	if res.Updated != updated || res.Stale != stale || res.Failed != failed || res.Success != (failed == 0) || len(res.Errors) != failed {
		t.Fatalf("%s: %+v, want updated %d, stale %d, failed %d", what, res, updated, stale, failed)
	}
}

// What the gateway sends in batch and legacy mode is stored once per message id, with every field
// as sent, and a receipt only moves its message's status forward, whatever order they arrive in.
func TestReferenceAppStoresMessagesOnceAndReceiptsOnlyForward(t *testing.T) {
	a := startApp(t)
	ctx := t.Context()
	c, err := laravel.NewClient(laravel.ClientConfig{BaseURL: a.url, Token: a.token, Secret: a.secret})
	if err != nil {
		t.Fatal(err)
	}
	sid := "msgs-" + randomHex(4)
	text := messageOf(sid, "m-text-"+randomHex(4), 1)
	reply := messageOf(sid, "m-reply-"+randomHex(4), 2)
	reply.Quote = text.MessageID
	reaction := messageOf(sid, "m-react-"+randomHex(4), 3)
	reaction.Type, reaction.Text, reaction.ReactTo = laravel.MessageReaction, "👍", text.MessageID
	image := messageOf(sid, "m-image-"+randomHex(4), 4)
	image.Type, image.Text = laravel.MessageImage, "este"
	image.Media = &laravel.MessageMedia{MimeType: "image/jpeg", FileLength: 11000, FileSHA256: strings.Repeat("ab", 32)}
	mine := messageOf(sid, "m-mine-"+randomHex(4), 5)
	mine.FromMe, mine.PushName, mine.Text = true, "", "sí, hay"

	// A batch carrying a duplicate stores it once; the replay of its key answers the same and
	// stores nothing; the next batch repeating a message counts it stale.
	key := "mk-" + randomHex(8)
	res, err := c.PostMessageBatch(ctx, key, laravel.MessageBatch{Messages: []laravel.MessageItem{text, reply, reply, reaction}})
	if err != nil {
		t.Fatal(err)
	}
	wantCounts(t, "batch with a duplicate", res, 3, 1, 0)
	if res, err = c.PostMessageBatch(ctx, key, laravel.MessageBatch{Messages: []laravel.MessageItem{text, reply, reply, reaction}}); err != nil {
		t.Fatal(err)
	}
	wantCounts(t, "replayed key", res, 3, 1, 0)
	if res, err = c.PostMessageBatch(ctx, "mk-"+randomHex(8), laravel.MessageBatch{Messages: []laravel.MessageItem{reaction, image}}); err != nil {
		t.Fatal(err)
	}
	wantCounts(t, "second batch", res, 1, 1, 0)
	// Legacy mode: one post per message, twice (a retry), both accepted.
	for range 2 {
		if err := c.PostMessage(ctx, mine); err != nil {
			t.Fatal(err)
		}
	}

	// Receipts of a sent message arrive out of order: read, then a late delivered (stale), read
	// again (stale), played; another recipient's delivered is its own row.
	sent := "s-" + randomHex(6)
	for i, step := range []struct {
		status         laravel.ReceiptStatus
		updated, stale int
	}{
		{laravel.ReceiptRead, 1, 0}, {laravel.ReceiptDelivered, 0, 1}, {laravel.ReceiptRead, 0, 1}, {laravel.ReceiptPlayed, 1, 0},
	} {
		res, err := c.PostReceiptBatch(ctx, "rk-"+randomHex(8), laravel.ReceiptBatch{Receipts: []laravel.ReceiptItem{receiptOf(sid, sent, step.status, int64(10+i))}})
		if err != nil {
			t.Fatal(err)
		}
		wantCounts(t, fmt.Sprintf("receipt %d (%s)", i+1, step.status), res, step.updated, step.stale, 0)
	}
	other := receiptOf(sid, sent, laravel.ReceiptDelivered, 20)
	other.Sender = "5511977770002@s.whatsapp.net"
	if err := c.PostReceipt(ctx, other); err != nil {
		t.Fatal(err)
	}
	if err := c.PostReceipt(ctx, receiptOf(sid, sent, laravel.ReceiptRead, 21)); err != nil { // legacy, late: ignored
		t.Fatal(err)
	}
	// A batch's receipts of one message apply in order: delivered then read, both forward.
	later := "s-" + randomHex(6)
	if res, err = c.PostReceiptBatch(ctx, "rk-"+randomHex(8), laravel.ReceiptBatch{Receipts: []laravel.ReceiptItem{
		receiptOf(sid, later, laravel.ReceiptDelivered, 22), receiptOf(sid, later, laravel.ReceiptRead, 23), receiptOf(sid, later, laravel.ReceiptDelivered, 24),
	}}); err != nil {
		t.Fatal(err)
	}
	wantCounts(t, "delivered, read, delivered in one batch", res, 2, 1, 0)

	st, err := front(t, a).Messages(ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	want := []laravel.MessageItem{text, reply, reaction, image, mine}
	if len(st.Messages) != len(want) {
		t.Fatalf("stored %d messages, want %d: %+v", len(st.Messages), len(want), st.Messages)
	}
	for i, m := range st.Messages {
		w := want[i]
		w.Timestamp = w.Timestamp.Truncate(time.Microsecond) // stored with microseconds
		got := m.MessageItem
		if mustJSON(t, got) != mustJSON(t, w) {
			t.Errorf("stored message %d:\n got %s\nwant %s", i, mustJSON(t, got), mustJSON(t, w))
		}
		deliveries := map[string]int{reply.MessageID: 2, reaction.MessageID: 2, mine.MessageID: 2}[m.MessageID]
		if deliveries == 0 {
			deliveries = 1
		}
		if m.Deliveries != deliveries || time.Since(m.StoredAt) > time.Minute {
			t.Errorf("message %s: %d deliveries stored at %v, want %d recently", m.MessageID, m.Deliveries, m.StoredAt, deliveries)
		}
	}
	rcpts := map[string]laravel.ReceiptStatus{}
	for _, r := range st.Receipts {
		rcpts[r.MessageID+" "+r.Sender] = r.Status
	}
	wantRcpts := map[string]laravel.ReceiptStatus{
		sent + " " + customerJID: laravel.ReceiptPlayed, sent + " " + other.Sender: laravel.ReceiptDelivered,
		later + " " + customerJID: laravel.ReceiptRead,
	}
	if fmt.Sprint(rcpts) != fmt.Sprint(wantRcpts) {
		t.Fatalf("stored receipts %v, want %v", rcpts, wantRcpts)
	}
}

// Laravel's 422 names the bad item's field, and a batch holding one applies nothing; the batch
// answer's errors is always a JSON array; every message type and receipt status of the Go
// contract is accepted, and a receipt's chat and sender may be empty.
func TestReferenceAppValidatesMessageAndReceiptItems(t *testing.T) {
	a := startApp(t)
	sid := "val-" + randomHex(4)
	good := messageOf(sid, "ok-"+randomHex(4), 1)
	item := func(edit func(m map[string]any)) map[string]any {
		var m map[string]any
		if err := json.Unmarshal([]byte(mustJSON(t, good)), &m); err != nil {
			t.Fatal(err)
		}
		edit(m)
		return m
	}
	rcpt := func(edit func(m map[string]any)) map[string]any {
		var m map[string]any
		if err := json.Unmarshal([]byte(mustJSON(t, receiptOf(sid, "r-"+randomHex(4), laravel.ReceiptRead, 1))), &m); err != nil {
			t.Fatal(err)
		}
		edit(m)
		return m
	}
	for _, tc := range []struct {
		name, path, field string
		body              any
	}{
		{"missing message id", laravel.PathMessageBatch, "messages.1.message_id",
			map[string]any{"messages": []any{good, item(func(m map[string]any) { delete(m, "message_id") })}}},
		{"unknown type", laravel.PathMessageBatch, "messages.1.type",
			map[string]any{"messages": []any{good, item(func(m map[string]any) { m["type"] = "poll" })}}},
		{"sequence 0", laravel.PathMessageBatch, "messages.1.sequence",
			map[string]any{"messages": []any{good, item(func(m map[string]any) { m["sequence"] = 0 })}}},
		{"bad session id", laravel.PathMessageBatch, "messages.1.session_id",
			map[string]any{"messages": []any{good, item(func(m map[string]any) { m["session_id"] = "a b" })}}},
		{"media hash not hex", laravel.PathMessageBatch, "messages.1.media.file_sha256",
			map[string]any{"messages": []any{good, item(func(m map[string]any) {
				m["media"] = map[string]any{"mime_type": "image/jpeg", "file_length": 1, "file_sha256": "XYZ"}
			})}}},
		{"timestamp not a date", laravel.PathMessageBatch, "messages.1.timestamp",
			map[string]any{"messages": []any{good, item(func(m map[string]any) { m["timestamp"] = "yesterday-ish" })}}},
		{"no items", laravel.PathMessageBatch, "messages", map[string]any{"messages": []any{}}},
		{"unknown receipt status", laravel.PathReceiptBatch, "receipts.0.status",
			map[string]any{"receipts": []any{rcpt(func(m map[string]any) { m["status"] = "seen" })}}},
		{"receipt without sender", laravel.PathReceiptBatch, "receipts.0.sender",
			map[string]any{"receipts": []any{rcpt(func(m map[string]any) { delete(m, "sender") })}}},
		{"legacy message without chat", laravel.PathMessage, "chat", item(func(m map[string]any) { delete(m, "chat") })},
		{"legacy receipt without sequence", laravel.PathReceipt, "sequence", rcpt(func(m map[string]any) { delete(m, "sequence") })},
	} {
		key := ""
		if strings.HasSuffix(tc.path, "/batch") {
			key = "vk-" + randomHex(8)
		}
		code, body := postRaw(t, a, tc.path, key, mustJSON(t, tc.body))
		var v laravel.ValidationError
		if code != http.StatusUnprocessableEntity || json.Unmarshal([]byte(body), &v) != nil || len(v.Errors[tc.field]) == 0 {
			t.Errorf("%s: %d %s, want 422 naming %s", tc.name, code, body, tc.field)
		}
	}
	// Nothing of the refused batches was stored: the good message is new now.
	code, body := postRaw(t, a, laravel.PathMessageBatch, "vk-"+randomHex(8), mustJSON(t, laravel.MessageBatch{Messages: []laravel.MessageItem{good}}))
	if code != http.StatusOK || !strings.Contains(body, `"updated":1`) || !strings.Contains(body, `"errors":[]`) {
		t.Fatalf("the good message after the refused batches: %d %s, want updated 1 and errors []", code, body)
	}

	var all []laravel.MessageItem
	for i, typ := range laravel.MessageTypes {
		m := messageOf(sid, fmt.Sprintf("type-%s-%s", typ, randomHex(3)), int64(10+i))
		m.Type = typ
		all = append(all, m)
	}
	code, body = postRaw(t, a, laravel.PathMessageBatch, "vk-"+randomHex(8), mustJSON(t, laravel.MessageBatch{Messages: all}))
	if code != http.StatusOK || !strings.Contains(body, fmt.Sprintf(`"updated":%d`, len(all))) {
		t.Fatalf("one message of every type: %d %s", code, body)
	}
	var rcpts []laravel.ReceiptItem
	for i, st := range laravel.ReceiptStatuses {
		r := receiptOf(sid, "r-"+randomHex(4), st, int64(30+i))
		r.Chat, r.Sender = "", "" // whatsmeow may leave them empty
		rcpts = append(rcpts, r)
	}
	code, body = postRaw(t, a, laravel.PathReceiptBatch, "vk-"+randomHex(8), mustJSON(t, laravel.ReceiptBatch{Receipts: rcpts}))
	if code != http.StatusOK || !strings.Contains(body, fmt.Sprintf(`"updated":%d`, len(rcpts))) {
		t.Fatalf("one receipt of every status, empty chat and sender: %d %s", code, body)
	}
}

// With WAGATE_CREATE_UNKNOWN_SESSIONS=false, an item of a session the app does not know fails on
// its own: one errors entry per failed item, in item order, naming its session, while the known
// session's items are stored; the legacy endpoints answer 404.
func TestReferenceAppRefusesItemsOfUnknownSessionsOneByOne(t *testing.T) {
	startApp(t) // skips without php-fpm
	strict, stop, err := launch("WAGATE_LARAVEL_CREATE_UNKNOWN_SESSIONS=false")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	ctx := t.Context()
	known, unknown := "known-"+randomHex(4), "unknown-"+randomHex(4)
	db, err := sql.Open("sqlite", strict.db+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `INSERT INTO whatsapp_sessions (session_id, estado_qr, enabled) VALUES (?, 'connected', 1)`, known); err != nil {
		t.Fatal(err)
	}
	c, err := laravel.NewClient(laravel.ClientConfig{BaseURL: strict.url, Token: strict.token, Secret: strict.secret})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.PostMessageBatch(ctx, "uk-"+randomHex(8), laravel.MessageBatch{Messages: []laravel.MessageItem{
		messageOf(known, "k1", 1), messageOf(unknown, "u1", 1), messageOf(known, "k2", 2), messageOf(unknown, "u2", 2),
	}})
	if err != nil {
		t.Fatal(err)
	}
	wantErrs := []laravel.ItemError{{SessionID: unknown, Error: "unknown session"}, {SessionID: unknown, Error: "unknown session"}}
	if wantCounts(t, "messages of a known and an unknown session", res, 2, 0, 2); fmt.Sprint(res.Errors) != fmt.Sprint(wantErrs) {
		t.Fatalf("errors %+v, want %+v", res.Errors, wantErrs)
	}
	if res, err = c.PostReceiptBatch(ctx, "uk-"+randomHex(8), laravel.ReceiptBatch{Receipts: []laravel.ReceiptItem{
		receiptOf(unknown, "s1", laravel.ReceiptRead, 3), receiptOf(known, "s1", laravel.ReceiptRead, 3),
	}}); err != nil {
		t.Fatal(err)
	}
	if wantCounts(t, "receipts", res, 1, 0, 1); res.Errors[0].SessionID != unknown {
		t.Fatalf("errors %+v, want the unknown session's", res.Errors)
	}
	var se *laravel.StatusError
	if err := c.PostMessage(ctx, messageOf(unknown, "u3", 3)); !errors.As(err, &se) || se.Status != http.StatusNotFound {
		t.Fatalf("legacy message of an unknown session: %v, want 404", err)
	}
	if err := c.PostReceipt(ctx, receiptOf(unknown, "s2", laravel.ReceiptRead, 4)); !errors.As(err, &se) || se.Status != http.StatusNotFound {
		t.Fatalf("legacy receipt of an unknown session: %v, want 404", err)
	}
	if err := c.PostMessage(ctx, messageOf(known, "k3", 3)); err != nil {
		t.Fatalf("legacy message of a known session: %v", err)
	}
	st, err := front(t, strict).Messages(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range st.Messages {
		ids = append(ids, m.SessionID+"/"+m.MessageID)
	}
	if want := []string{known + "/k1", known + "/k2", known + "/k3"}; fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Fatalf("stored %v, want %v", ids, want)
	}
}

// BenchmarkReferenceAppMessageBatch posts message batches of 1, 50 and 500 new messages to the
// real app (validation of every item's 17 rules, one insert each, one transaction, the key).
func BenchmarkReferenceAppMessageBatch(b *testing.B) {
	a := startApp(b)
	c, err := laravel.NewClient(laravel.ClientConfig{BaseURL: a.url, Token: a.token, Secret: a.secret})
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{1, 50, 500} {
		b.Run(fmt.Sprintf("items=%d", size), func(b *testing.B) {
			sid := "bench-" + randomHex(4)
			seq := int64(0)
			for i := 0; i < b.N; i++ {
				items := make([]laravel.MessageItem, size)
				for j := range items {
					seq++
					items[j] = messageOf(sid, fmt.Sprintf("b-%d", seq), seq)
				}
				res, err := c.PostMessageBatch(b.Context(), "bk-"+randomHex(8), laravel.MessageBatch{Messages: items})
				if err != nil || res.Updated != size {
					b.Fatalf("batch of %d: %+v, %v", size, res, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*size), "us/item")
		})
	}
}
