package whatsapp

import (
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"wagate/gateway/laravel"
	"wagate/gateway/session"
)

// messageEvent translates a decrypted message into a session.MessageReceived; false for what is
// not a conversation message (status broadcasts, protocol and key-distribution messages).
func messageEvent(e *events.Message) (session.MessageReceived, bool) {
	if e == nil || e.Message == nil || e.Info.Chat.Server == types.BroadcastServer {
		return session.MessageReceived{}, false
	}
	item := laravel.MessageItem{
		MessageID: e.Info.ID,
		Chat:      e.Info.Chat.String(),
		Sender:    e.Info.Sender.ToNonAD().String(),
		FromMe:    e.Info.IsFromMe,
		PushName:  e.Info.PushName,
		Timestamp: e.Info.Timestamp,
	}
	m := e.Message
	var ctx *waE2E.ContextInfo
	switch {
	case m.Conversation != nil:
		item.Type, item.Text = laravel.MessageText, m.GetConversation()
	case m.ExtendedTextMessage != nil:
		item.Type, item.Text = laravel.MessageText, m.GetExtendedTextMessage().GetText()
		ctx = m.GetExtendedTextMessage().GetContextInfo()
	case m.ReactionMessage != nil:
		r := m.GetReactionMessage()
		item.Type, item.Text, item.ReactTo = laravel.MessageReaction, r.GetText(), r.GetKey().GetID()
	case m.ImageMessage != nil:
		item.Type, item.Text = laravel.MessageImage, m.GetImageMessage().GetCaption()
		ctx = m.GetImageMessage().GetContextInfo()
	case m.VideoMessage != nil:
		item.Type, item.Text = laravel.MessageVideo, m.GetVideoMessage().GetCaption()
		ctx = m.GetVideoMessage().GetContextInfo()
	case m.AudioMessage != nil:
		item.Type = laravel.MessageAudio
		ctx = m.GetAudioMessage().GetContextInfo()
	case m.DocumentMessage != nil:
		item.Type, item.Text = laravel.MessageDocument, m.GetDocumentMessage().GetCaption()
		ctx = m.GetDocumentMessage().GetContextInfo()
	case m.StickerMessage != nil:
		item.Type = laravel.MessageSticker
	case m.LocationMessage != nil:
		item.Type = laravel.MessageLocation
	case m.ContactMessage != nil:
		item.Type = laravel.MessageContact
	case m.ProtocolMessage != nil, m.SenderKeyDistributionMessage != nil:
		return session.MessageReceived{}, false
	default:
		item.Type = laravel.MessageOther
	}
	item.Quote = ctx.GetStanzaID()
	return session.MessageReceived{Message: item}, true
}

// receiptEvent translates a receipt of messages the session sent; false for receipts that say
// nothing Laravel tracks (retry, sender, server errors, ...).
func receiptEvent(e *events.Receipt) (session.ReceiptReceived, bool) {
	var status laravel.ReceiptStatus
	switch e.Type {
	case types.ReceiptTypeDelivered, types.ReceiptTypeInactive:
		status = laravel.ReceiptDelivered
	case types.ReceiptTypeRead, types.ReceiptTypeReadSelf:
		status = laravel.ReceiptRead
	case types.ReceiptTypePlayed, types.ReceiptTypePlayedSelf:
		status = laravel.ReceiptPlayed
	default:
		return session.ReceiptReceived{}, false
	}
	if len(e.MessageIDs) == 0 {
		return session.ReceiptReceived{}, false
	}
	ids := make([]string, len(e.MessageIDs))
	copy(ids, e.MessageIDs)
	return session.ReceiptReceived{MessageIDs: ids, Receipt: laravel.ReceiptItem{
		Chat:      e.Chat.String(),
		Sender:    e.Sender.ToNonAD().String(),
		Status:    status,
		Timestamp: e.Timestamp,
	}}, true
}
