package whatsapp

import (
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"wagate/gateway/laravel"
)

func incoming(m *waE2E.Message) *events.Message {
	customer := types.NewJID("5511977770001", types.DefaultUserServer)
	return &events.Message{Info: types.MessageInfo{
		MessageSource: types.MessageSource{Chat: customer, Sender: customer},
		ID:            "A1", Timestamp: time.Unix(1_800_000_000, 0), PushName: "Ana",
	}, Message: m}
}

func TestMessagesBecomeItemsByWhatTheyCarry(t *testing.T) {
	for name, tc := range map[string]struct {
		msg  *waE2E.Message
		want laravel.MessageItem
	}{
		"plain text": {&waE2E.Message{Conversation: proto.String("hola")},
			laravel.MessageItem{Type: laravel.MessageText, Text: "hola"}},
		"reply": {&waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{Text: proto.String("sí"),
			ContextInfo: &waE2E.ContextInfo{StanzaID: proto.String("Q1")}}},
			laravel.MessageItem{Type: laravel.MessageText, Text: "sí", Quote: "Q1"}},
		"reaction": {&waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{Text: proto.String("👍"),
			Key: &waCommon.MessageKey{ID: proto.String("Q1")}}},
			laravel.MessageItem{Type: laravel.MessageReaction, Text: "👍", ReactTo: "Q1"}},
		"image with caption replying": {&waE2E.Message{ImageMessage: &waE2E.ImageMessage{Caption: proto.String("foto"),
			Mimetype: proto.String("image/jpeg"), FileLength: proto.Uint64(1234), FileSHA256: []byte{0xab, 0xcd},
			ContextInfo: &waE2E.ContextInfo{StanzaID: proto.String("Q2")}}},
			laravel.MessageItem{Type: laravel.MessageImage, Text: "foto", Quote: "Q2",
				Media: &laravel.MessageMedia{MimeType: "image/jpeg", FileLength: 1234, FileSHA256: "abcd"}}},
		"document": {&waE2E.Message{DocumentMessage: &waE2E.DocumentMessage{Caption: proto.String("factura"),
			Mimetype: proto.String("application/pdf"), FileName: proto.String("f.pdf"), FileLength: proto.Uint64(9)}},
			laravel.MessageItem{Type: laravel.MessageDocument, Text: "factura",
				Media: &laravel.MessageMedia{MimeType: "application/pdf", FileName: "f.pdf", FileLength: 9}}},
		"location": {&waE2E.Message{LocationMessage: &waE2E.LocationMessage{}}, laravel.MessageItem{Type: laravel.MessageLocation}},
		"poll":     {&waE2E.Message{PollCreationMessage: &waE2E.PollCreationMessage{}}, laravel.MessageItem{Type: laravel.MessageOther}},
	} {
		ev, ok := messageEvent(incoming(tc.msg))
		if !ok {
			t.Errorf("%s: dropped", name)
			continue
		}
		got := ev.Message
		want := tc.want
		want.MessageID, want.Chat, want.Sender, want.PushName = "A1", "5511977770001@s.whatsapp.net", "5511977770001@s.whatsapp.net", "Ana"
		want.Timestamp = time.Unix(1_800_000_000, 0)
		gotMedia, wantMedia := got.Media, want.Media
		got.Media, want.Media = nil, nil
		if got != want || (gotMedia == nil) != (wantMedia == nil) || (gotMedia != nil && *gotMedia != *wantMedia) {
			t.Errorf("%s: item %+v (media %+v), want %+v (media %+v)", name, got, gotMedia, want, wantMedia)
		}
	}
}

func TestProtocolMessagesAndStatusBroadcastsAreNotConversationMessages(t *testing.T) {
	revoke := incoming(&waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{}})
	if _, ok := messageEvent(revoke); ok {
		t.Error("a protocol message became a message item")
	}
	keys := incoming(&waE2E.Message{SenderKeyDistributionMessage: &waE2E.SenderKeyDistributionMessage{}})
	if _, ok := messageEvent(keys); ok {
		t.Error("a bare sender key distribution became a message item")
	}
	status := incoming(&waE2E.Message{Conversation: proto.String("mi estado")})
	status.Info.Chat = types.StatusBroadcastJID
	if _, ok := messageEvent(status); ok {
		t.Error("a status broadcast became a message item")
	}
}

func TestReceiptsMapToDeliveredReadPlayedAndNothingElse(t *testing.T) {
	customer := types.NewJID("5511977770001", types.DefaultUserServer)
	for typ, want := range map[types.ReceiptType]laravel.ReceiptStatus{
		types.ReceiptTypeDelivered: laravel.ReceiptDelivered, types.ReceiptTypeInactive: laravel.ReceiptDelivered,
		types.ReceiptTypeRead: laravel.ReceiptRead, types.ReceiptTypeReadSelf: laravel.ReceiptRead,
		types.ReceiptTypePlayed: laravel.ReceiptPlayed,
		types.ReceiptTypeRetry:  "", types.ReceiptTypeSender: "", types.ReceiptTypeServerError: "",
	} {
		ev, ok := receiptEvent(&events.Receipt{MessageSource: types.MessageSource{Chat: customer, Sender: customer},
			MessageIDs: []types.MessageID{"OUT1", "OUT2"}, Type: typ, Timestamp: time.Unix(1_800_000_000, 0)})
		if want == "" {
			if ok {
				t.Errorf("receipt type %q became %s", typ, ev.Receipt.Status)
			}
			continue
		}
		if !ok || ev.Receipt.Status != want || len(ev.MessageIDs) != 2 || ev.Receipt.Sender != customer.String() {
			t.Errorf("receipt type %q: %+v, %v; want %s for both ids", typ, ev, ok, want)
		}
	}
}
