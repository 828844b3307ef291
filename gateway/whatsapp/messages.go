package whatsapp

import (
	"encoding/hex"

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
		f := m.GetImageMessage()
		item.Type, item.Text, item.Media = laravel.MessageImage, f.GetCaption(), media(f.GetMimetype(), "", f.GetFileLength(), f.GetFileSHA256())
		ctx = f.GetContextInfo()
	case m.VideoMessage != nil:
		f := m.GetVideoMessage()
		item.Type, item.Text, item.Media = laravel.MessageVideo, f.GetCaption(), media(f.GetMimetype(), "", f.GetFileLength(), f.GetFileSHA256())
		ctx = f.GetContextInfo()
	case m.AudioMessage != nil:
		f := m.GetAudioMessage()
		item.Type, item.Media = laravel.MessageAudio, media(f.GetMimetype(), "", f.GetFileLength(), f.GetFileSHA256())
		ctx = f.GetContextInfo()
	case m.DocumentMessage != nil:
		f := m.GetDocumentMessage()
		item.Type, item.Text = laravel.MessageDocument, f.GetCaption()
		item.Media = media(f.GetMimetype(), f.GetFileName(), f.GetFileLength(), f.GetFileSHA256())
		ctx = f.GetContextInfo()
	case m.StickerMessage != nil:
		f := m.GetStickerMessage()
		item.Type, item.Media = laravel.MessageSticker, media(f.GetMimetype(), "", f.GetFileLength(), f.GetFileSHA256())
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

// media is the metadata of a message's file (the file stays with WhatsApp until downloaded).
func media(mimeType, fileName string, length uint64, sha []byte) *laravel.MessageMedia {
	return &laravel.MessageMedia{MimeType: mimeType, FileName: fileName, FileLength: length, FileSHA256: hex.EncodeToString(sha)}
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
