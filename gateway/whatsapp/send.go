package whatsapp

import (
	"google.golang.org/protobuf/proto"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"

	"wagate/gateway/session"
)

// outgoingText is the protobuf of a text the session sends to the chat with to: a plain
// conversation, or an extended text whose context names the quoted message and who wrote it (the
// phone, or own when msg.QuoteFromMe), as WhatsApp's clients send a reply.
func outgoingText(msg session.OutgoingText, to, own types.JID) *waE2E.Message {
	if msg.Quote == "" {
		return &waE2E.Message{Conversation: proto.String(msg.Text)}
	}
	author := to.ToNonAD()
	if msg.QuoteFromMe {
		author = own
	}
	return &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{
		Text: proto.String(msg.Text),
		ContextInfo: &waE2E.ContextInfo{
			StanzaID:    proto.String(msg.Quote),
			Participant: proto.String(author.String()),
		},
	}}
}
