package whatsapp

import (
	"testing"

	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"wagate/gateway/laravel"
	"wagate/gateway/session"
)

// What the gateway sends reads back, through the translation of incoming messages, as the
// message it meant: the text, and for a reply the quoted id.
func TestOutgoingTextReadsBackAsTheMessageMeant(t *testing.T) {
	to := types.NewJID("5511977770077", types.DefaultUserServer)
	own := types.NewJID("15557770101", types.DefaultUserServer)
	for _, c := range []struct {
		name            string
		msg             session.OutgoingText
		wantQuote       string
		wantParticipant string
	}{
		{"a plain text", session.OutgoingText{Phone: "5511977770077", Text: "hola"}, "", ""},
		{"a reply to the customer", session.OutgoingText{Phone: "5511977770077", Text: "sí", Quote: "ABC"}, "ABC", to.String()},
		{"a reply to our own message", session.OutgoingText{Phone: "5511977770077", Text: "sí", Quote: "DEF", QuoteFromMe: true}, "DEF", own.String()},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := outgoingText(c.msg, to, own)
			ev, ok := messageEvent(&events.Message{Info: types.MessageInfo{MessageSource: types.MessageSource{Chat: to, Sender: own, IsFromMe: true}}, Message: m})
			item := ev.Message
			if !ok || item.Type != laravel.MessageText || item.Text != c.msg.Text || item.Quote != c.wantQuote {
				t.Fatalf("reads back as %+v (ok %v), want text %q quoting %q", item, ok, c.msg.Text, c.wantQuote)
			}
			if got := m.GetExtendedTextMessage().GetContextInfo().GetParticipant(); got != c.wantParticipant {
				t.Fatalf("quoted author %q, want %q", got, c.wantParticipant)
			}
		})
	}
}
