package fakewa

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
)

const contactPhone = "5511977770001"

// sendFromPhone makes contactPhone write m to the device and returns the message id.
func sendFromPhone(t *testing.T, srv *Server, to types.JID, m PhoneMessage) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if m.From == "" {
		m.From = contactPhone
	}
	id, err := srv.SendMessage(ctx, to, m)
	if err != nil {
		t.Fatalf("SendMessage(%+v): %v", m, err)
	}
	return id
}

// nextMessage waits for the client's next decrypted message and checks its id and sender.
func nextMessage(t *testing.T, tc *testClient, id string) *events.Message {
	t.Helper()
	msg := waitFor[*events.Message](tc)
	if msg.Info.ID != id {
		t.Fatalf("client got message %s, want %s (in order)", msg.Info.ID, id)
	}
	if msg.Info.Sender.User != contactPhone || msg.Info.Chat.User != contactPhone || msg.Info.IsFromMe {
		t.Fatalf("message %s from %s in chat %s (from me: %v), want from and in the chat of %s",
			id, msg.Info.Sender, msg.Info.Chat, msg.Info.IsFromMe, contactPhone)
	}
	return msg
}

// waitReceipts waits for the device's receipts of ids. Tests end only after them: whatsmeow sends
// a receipt asynchronously, and its Disconnect racing that write is a data race inside whatsmeow.
func waitReceipts(t *testing.T, srv *Server, ids ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, id := range ids {
		if _, err := srv.WaitEvent(ctx, func(e Event) bool {
			return e.Kind == EventDeviceReceipt && e.MessageID == id && e.Detail != "retry"
		}); err != nil {
			t.Fatalf("no device receipt for %s: %v", id, err)
		}
	}
}

// delivered returns the server's delivery event of message id (the latest attempt).
func delivered(t *testing.T, srv *Server, id string) Event {
	t.Helper()
	var found *Event
	for _, e := range srv.Events() {
		if e.Kind == EventPhoneMessageDelivered && e.MessageID == id {
			found = &e
		}
	}
	if found == nil {
		t.Fatalf("no %s event for %s", EventPhoneMessageDelivered, id)
	}
	return *found
}

func TestAPhonesTextReplyAndReactionReachTheClientDecryptedInOrderAndAreReceipted(t *testing.T) {
	srv := startServer(t, Config{})
	tc, jid := pairedClient(t, srv, "5511900000301")

	text := sendFromPhone(t, srv, jid, PhoneMessage{Text: "hola, ¿tienen stock?"})
	got := nextMessage(t, tc, text)
	if got.Message.GetConversation() != "hola, ¿tienen stock?" {
		t.Fatalf("text decrypted as %q", got.Message.GetConversation())
	}
	receipt := waitServerEvent(t, srv, EventDeviceReceipt, jid)
	if receipt.MessageID != text || receipt.From != contactPhone {
		t.Fatalf("first device receipt %+v, want one for %s from %s", receipt, text, contactPhone)
	}
	if e := delivered(t, srv, text); e.Enc != "pkmsg" || e.Detail != "text" || e.Attempt != 1 || e.From != contactPhone {
		t.Fatalf("first message delivered as %+v, want a text pkmsg on the first attempt", e)
	}

	reply := sendFromPhone(t, srv, jid, PhoneMessage{Text: "¿y en azul?", Quote: text})
	reaction := sendFromPhone(t, srv, jid, PhoneMessage{Text: "👍", ReactTo: text})

	got = nextMessage(t, tc, reply)
	ext := got.Message.GetExtendedTextMessage()
	if ext.GetText() != "¿y en azul?" || ext.GetContextInfo().GetStanzaID() != text ||
		ext.GetContextInfo().GetParticipant() != types.NewJID(contactPhone, types.DefaultUserServer).String() {
		t.Fatalf("reply decrypted as %v, want text quoting %s written by %s", ext, text, contactPhone)
	}
	got = nextMessage(t, tc, reaction)
	r := got.Message.GetReactionMessage()
	if r.GetText() != "👍" || r.GetKey().GetID() != text || !r.GetKey().GetFromMe() {
		t.Fatalf("reaction decrypted as %v, want 👍 on %s (the phone's own message)", r, text)
	}
	for _, id := range []string{reply, reaction} {
		if e := delivered(t, srv, id); e.Enc != "msg" {
			t.Fatalf("message %s after the device's receipt went as %s, want msg", id, e.Enc)
		}
	}
	// Every message is receipted by the device, and nothing is left held.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, id := range []string{reply, reaction} {
		if _, err := srv.WaitEvent(ctx, func(e Event) bool {
			return e.Kind == EventDeviceReceipt && e.MessageID == id && e.From == contactPhone
		}); err != nil {
			t.Fatalf("no device receipt for %s: %v", id, err)
		}
	}
	d := srv.devices[jid]
	d.sendMu.Lock()
	held := len(d.outbox)
	d.sendMu.Unlock()
	if held != 0 {
		t.Fatalf("%d messages still held after every receipt", held)
	}
}

func TestMessagesToAnOfflineDeviceAreHeldAndDeliveredInOrderWhenItReconnects(t *testing.T) {
	srv := startServer(t, Config{})
	tc, jid := pairedClient(t, srv, "5511900000302")

	tc.cli.Disconnect()
	waitServerEvent(t, srv, EventDisconnected, jid)
	first := sendFromPhone(t, srv, jid, PhoneMessage{Text: "one"})
	second := sendFromPhone(t, srv, jid, PhoneMessage{Text: "two"})
	for _, id := range []string{first, second} {
		held := false
		for _, e := range srv.EventsFor(jid) {
			held = held || (e.Kind == EventPhoneMessageHeld && e.MessageID == id)
			if e.Kind == EventPhoneMessageDelivered && e.MessageID == id {
				t.Fatalf("message %s delivered to an offline device", id)
			}
		}
		if !held {
			t.Fatalf("message %s not recorded as held", id)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if tc.saw(is[*events.Message]) {
		t.Fatal("a disconnected client received a message")
	}

	if err := tc.cli.Connect(); err != nil {
		t.Fatal(err)
	}
	if got := nextMessage(t, tc, first); got.Message.GetConversation() != "one" {
		t.Fatalf("first held message decrypted as %q", got.Message.GetConversation())
	}
	if got := nextMessage(t, tc, second); got.Message.GetConversation() != "two" {
		t.Fatalf("second held message decrypted as %q", got.Message.GetConversation())
	}
	if sync := waitFor[*events.OfflineSyncCompleted](tc); sync.Count != 2 {
		t.Fatalf("offline sync count %d, want 2", sync.Count)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, id := range []string{first, second} {
		if _, err := srv.WaitEvent(ctx, func(e Event) bool { return e.Kind == EventDeviceReceipt && e.MessageID == id }); err != nil {
			t.Fatalf("no device receipt for held message %s: %v", id, err)
		}
	}
}

func TestAMessageWithoutReceiptIsRedeliveredAtTheNextLoginAndTheClientSeesItOnce(t *testing.T) {
	srv := startServer(t, Config{})
	tc, jid := pairedClient(t, srv, "5511900000303")
	first := sendFromPhone(t, srv, jid, PhoneMessage{Text: "first"})
	nextMessage(t, tc, first)
	waitServerEvent(t, srv, EventDeviceReceipt, jid)

	// The server forgets the receipt of the next message, as if the connection broke before it
	// arrived: at the next login WhatsApp delivers the message again.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d := srv.devices[jid]
	d.sendMu.Lock()
	h, err := srv.sendLocked(ctx, d, PhoneMessage{From: contactPhone, Text: "second"})
	if err != nil {
		t.Fatal(err)
	}
	forgotten := *h
	d.sendMu.Unlock()
	second := h.id
	nextMessage(t, tc, second)
	if _, err := srv.WaitEvent(ctx, func(e Event) bool { return e.Kind == EventDeviceReceipt && e.MessageID == second }); err != nil {
		t.Fatal(err)
	}
	d.sendMu.Lock()
	d.outbox = append(d.outbox, &forgotten)
	d.sendMu.Unlock()

	if err := srv.Drop(jid); err != nil {
		t.Fatal(err)
	}
	waitFor[*events.Disconnected](tc)
	waitFor[*events.Connected](tc)
	if _, err := srv.WaitEvent(ctx, func(e Event) bool {
		return e.Kind == EventPhoneMessageDelivered && e.MessageID == second && e.Attempt == 2
	}); err != nil {
		t.Fatalf("message without receipt not redelivered: %v", err)
	}
	if _, err := srv.WaitEvent(ctx, func(e Event) bool {
		return e.Kind == EventDeviceReceipt && e.MessageID == second && e.From == contactPhone
	}); err != nil {
		t.Fatalf("redelivered message not receipted: %v", err)
	}
	third := sendFromPhone(t, srv, jid, PhoneMessage{Text: "third"})
	if got := nextMessage(t, tc, third); got.Message.GetConversation() != "third" {
		t.Fatalf("after the redelivery the client got %q", got.Message.GetConversation())
	}
	waitReceipts(t, srv, third)
}

func TestControlAPIMakesAPhoneWrite(t *testing.T) {
	srv := startServer(t, Config{})
	api := httptest.NewServer(srv.ControlHandler())
	defer api.Close()
	ctl := &ControlClient{BaseURL: api.URL, HTTP: api.Client()}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tc, jid := pairedClient(t, srv, "5511900000304")

	id, err := ctl.SendMessage(ctx, jid, PhoneMessage{From: contactPhone, Text: "por HTTP"})
	if err != nil {
		t.Fatalf("POST messages: %v", err)
	}
	if got := nextMessage(t, tc, id); got.Message.GetConversation() != "por HTTP" {
		t.Fatalf("decrypted %q", got.Message.GetConversation())
	}
	waitReceipts(t, srv, id)
	var ce *ControlError
	unknown := types.NewADJID("5511900000999", 0, 1)
	if _, err := ctl.SendMessage(ctx, unknown, PhoneMessage{From: contactPhone, Text: "x"}); !errors.As(err, &ce) || ce.Status != http.StatusNotFound {
		t.Fatalf("unknown device: %v, want 404", err)
	}
	for _, bad := range []PhoneMessage{{From: "12", Text: "x"}, {From: contactPhone}, {From: contactPhone, Text: "x", Quote: "A", ReactTo: "B"}} {
		if _, err := ctl.SendMessage(ctx, jid, bad); !errors.As(err, &ce) || ce.Status != http.StatusBadRequest {
			t.Fatalf("message %+v: %v, want 400", bad, err)
		}
	}
}

func TestADeviceThatCannotDecryptGetsTheMessageAgainInAFreshSession(t *testing.T) {
	srv := startServer(t, Config{})
	tc, jid := pairedClient(t, srv, "5511900000305")
	first := sendFromPhone(t, srv, jid, PhoneMessage{Text: "first"})
	nextMessage(t, tc, first)
	waitReceipts(t, srv, first)

	// The device loses its Signal session with the phone (a restored backup, a store reset): the
	// phone's next msg cannot be decrypted, the device asks for it again with a retry receipt.
	ctx := context.Background()
	addr := types.NewJID(contactPhone, types.DefaultUserServer).SignalAddress().String()
	if err := tc.cli.Store.Sessions.DeleteSession(ctx, addr); err != nil {
		t.Fatal(err)
	}
	second := sendFromPhone(t, srv, jid, PhoneMessage{Text: "second"})
	for _, e := range srv.EventsFor(jid) {
		if e.Kind == EventPhoneMessageDelivered && e.MessageID == second && e.Attempt == 1 && e.Enc != "msg" {
			t.Fatalf("second message went as %s, want msg (the session was established)", e.Enc)
		}
	}
	if got := nextMessage(t, tc, second); got.Message.GetConversation() != "second" {
		t.Fatalf("retried message decrypted as %q", got.Message.GetConversation())
	}
	if !tc.saw(func(e any) bool { u, ok := e.(*events.UndecryptableMessage); return ok && u.Info.ID == second }) {
		t.Fatal("the client decrypted the msg without a session: the test did not exercise a retry")
	}
	if e := delivered(t, srv, second); e.Enc != "pkmsg" || e.Attempt != 2 {
		t.Fatalf("retried delivery %+v, want a fresh pkmsg on the second attempt", e)
	}
	waitReceipts(t, srv, second)
}

// The durability a gateway builds on: a client that could not keep a message (its handler
// failed, e.g. its outbox was down) sends no receipt, so the message stays held and comes back
// at the next login, and whatsmeow's decrypted-event buffer lets it decrypt it again.
func TestAMessageTheClientFailedToHandleComesBackAfterAReconnect(t *testing.T) {
	srv := startServer(t, Config{})
	tc, jid := pairedClient(t, srv, "5511900000308")
	tc.cli.EnableDecryptedEventBuffer = true
	var failed atomic.Bool
	tc.cli.AddEventHandlerWithSuccessStatus(func(evt any) bool {
		if m, ok := evt.(*events.Message); ok && m.Message.GetConversation() == "keep me" && failed.CompareAndSwap(false, true) {
			return false // the first time: not kept
		}
		return true
	})
	id := sendFromPhone(t, srv, jid, PhoneMessage{Text: "keep me"})
	nextMessage(t, tc, id)
	time.Sleep(200 * time.Millisecond)
	var dropSeq uint64
	for _, e := range srv.EventsFor(jid) {
		// A retry receipt (a loaded client failing to decrypt at first) is not an acknowledgement.
		if e.Kind == EventDeviceReceipt && e.MessageID == id && e.Detail != "retry" {
			t.Fatalf("the client acknowledged a message its handler failed to keep: %+v", e)
		}
		dropSeq = e.Seq
	}

	// The redelivered message may come before the client reports Connected again.
	if err := srv.Drop(jid); err != nil {
		t.Fatal(err)
	}
	if got := nextMessage(t, tc, id); got.Message.GetConversation() != "keep me" {
		t.Fatalf("redelivered message decrypted as %q", got.Message.GetConversation())
	}
	waitReceipts(t, srv, id)
	if e := delivered(t, srv, id); e.Seq <= dropSeq {
		t.Fatalf("last delivery %+v came before the reconnect", e)
	}
}
