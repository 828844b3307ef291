package legacy

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"wagate/gateway/delivery"
	"wagate/gateway/event"
	"wagate/gateway/laravel"
)

func TestEveryMessageAndReceiptIsOneRequestWithItsItem(t *testing.T) {
	var mu sync.Mutex
	var messages []laravel.MessageItem
	var receipts []laravel.ReceiptItem
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		var err error
		switch r.URL.Path {
		case laravel.PathMessage:
			var m laravel.MessageItem
			err = json.NewDecoder(r.Body).Decode(&m)
			messages = append(messages, m)
		case laravel.PathReceipt:
			var rc laravel.ReceiptItem
			err = json.NewDecoder(r.Body).Decode(&rc)
			receipts = append(receipts, rc)
		default:
			w.WriteHeader(http.StatusNotFound)
			return
		}
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		_, _ = w.Write([]byte(`{"success":true}`))
	}))
	defer srv.Close()
	c, err := laravel.NewClient(laravel.ClientConfig{BaseURL: srv.URL, Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	d := New(c)
	if !delivery.Accepts(d, event.KindMessage) || !delivery.Accepts(d, event.KindReceipt) {
		t.Fatal("legacy must say it delivers messages and receipts")
	}
	at := time.Unix(1_800_000_000, 0).UTC()
	msg := laravel.MessageItem{SessionID: "s1", MessageID: "A1", Chat: "551199@s.whatsapp.net", Sender: "551199@s.whatsapp.net",
		Type: laravel.MessageText, Text: "hola", Quote: "Q0", Timestamp: at, Sequence: 7}
	rc := laravel.ReceiptItem{SessionID: "s1", MessageID: "OUT1", Chat: "551199@s.whatsapp.net", Sender: "551199@s.whatsapp.net",
		Status: laravel.ReceiptRead, Timestamp: at, Sequence: 8}
	ctx := context.Background()
	if err := d.Deliver(ctx, event.Event{ID: "s1-message-7", SessionID: "s1", Kind: event.KindMessage, Payload: "A1", Time: at, Version: 7, Message: &msg}); err != nil {
		t.Fatal(err)
	}
	if err := d.Deliver(ctx, event.Event{ID: "s1-receipt-8", SessionID: "s1", Kind: event.KindReceipt, Payload: "OUT1", Time: at, Version: 8, Receipt: &rc}); err != nil {
		t.Fatal(err)
	}
	bad := event.Event{ID: "x", SessionID: "s1", Kind: event.KindMessage, Payload: "A2", Time: at, Version: 9}
	if err := d.Deliver(ctx, bad); err == nil {
		t.Fatal("a message event without its message was sent")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(messages) != 1 || messages[0] != msg {
		t.Fatalf("messages posted %+v, want exactly %+v", messages, msg)
	}
	if len(receipts) != 1 || receipts[0] != rc {
		t.Fatalf("receipts posted %+v, want exactly %+v", receipts, rc)
	}
}
