package whatsapp

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"

	"wagate/gateway/session"
	"wagate/gateway/storage"
)

// mediaRetention is how long a received media message's reference is kept: WhatsApp's servers
// keep a blob about as long, so an older reference could not be downloaded anyway.
const mediaRetention = 30 * 24 * time.Hour

// mediaStore keeps what downloading a received media message needs (its direct path, media key
// and hashes: the media sub-message itself) by session and message id, in the gateway's SQL
// store, written before the message is acknowledged to WhatsApp so a restart cannot lose it.
type mediaStore struct {
	db *storage.DB
}

// newMediaStore creates the table when missing and drops references past mediaRetention.
func newMediaStore(ctx context.Context, db *storage.DB) (*mediaStore, error) {
	blob := "BLOB"
	if db.Dialect == storage.Postgres {
		blob = "BYTEA"
	}
	if _, err := db.SQL.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS wagate_media (
		session_id TEXT NOT NULL,
		message_id TEXT NOT NULL,
		message `+blob+` NOT NULL,
		received_at BIGINT NOT NULL,
		PRIMARY KEY (session_id, message_id))`); err != nil {
		return nil, fmt.Errorf("whatsapp: media table: %w", err)
	}
	s := &mediaStore{db: db}
	if _, err := db.SQL.ExecContext(ctx, s.q(`DELETE FROM wagate_media WHERE received_at < ?`), time.Now().Add(-mediaRetention).Unix()); err != nil {
		return nil, fmt.Errorf("whatsapp: prune media references: %w", err)
	}
	return s, nil
}

// q writes ? placeholders as the dialect wants them.
func (s *mediaStore) q(query string) string {
	if s.db.Dialect != storage.Postgres {
		return query
	}
	out, n := make([]byte, 0, len(query)+8), 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			out = fmt.Appendf(out, "$%d", n)
			continue
		}
		out = append(out, query[i])
	}
	return string(out)
}

// put keeps the media part of a received message (nothing for a message without a file).
func (s *mediaStore) put(ctx context.Context, sessionID, messageID string, m *waE2E.Message) error {
	media := mediaPart(m)
	if media == nil {
		return nil
	}
	raw, err := proto.Marshal(media)
	if err != nil {
		return fmt.Errorf("whatsapp: encode media reference: %w", err)
	}
	_, err = s.db.SQL.ExecContext(ctx, s.q(`INSERT INTO wagate_media (session_id, message_id, message, received_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (session_id, message_id) DO NOTHING`), sessionID, messageID, raw, time.Now().Unix())
	if err != nil {
		return fmt.Errorf("whatsapp: keep media reference: %w", err)
	}
	return nil
}

// get returns the media part of a message the session received, or session.ErrMediaNotFound.
func (s *mediaStore) get(ctx context.Context, sessionID, messageID string) (*waE2E.Message, error) {
	var raw []byte
	err := s.db.SQL.QueryRowContext(ctx, s.q(`SELECT message FROM wagate_media WHERE session_id = ? AND message_id = ?`), sessionID, messageID).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, session.ErrMediaNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("whatsapp: read media reference: %w", err)
	}
	m := &waE2E.Message{}
	if err := proto.Unmarshal(raw, m); err != nil {
		return nil, fmt.Errorf("whatsapp: decode media reference: %w", err)
	}
	return m, nil
}

// mediaPart is the message reduced to its downloadable file (image, video, audio, document or
// sticker), nil when it has none.
func mediaPart(m *waE2E.Message) *waE2E.Message {
	switch {
	case m.GetImageMessage() != nil:
		return &waE2E.Message{ImageMessage: m.GetImageMessage()}
	case m.GetVideoMessage() != nil:
		return &waE2E.Message{VideoMessage: m.GetVideoMessage()}
	case m.GetAudioMessage() != nil:
		return &waE2E.Message{AudioMessage: m.GetAudioMessage()}
	case m.GetDocumentMessage() != nil:
		return &waE2E.Message{DocumentMessage: m.GetDocumentMessage()}
	case m.GetStickerMessage() != nil:
		return &waE2E.Message{StickerMessage: m.GetStickerMessage()}
	}
	return nil
}

// downloadable is the media sub-message whatsmeow downloads (nil for none; mediaPart kept only
// messages with one).
func downloadable(m *waE2E.Message) whatsmeow.DownloadableMessage {
	switch {
	case m.GetImageMessage() != nil:
		return m.GetImageMessage()
	case m.GetVideoMessage() != nil:
		return m.GetVideoMessage()
	case m.GetAudioMessage() != nil:
		return m.GetAudioMessage()
	case m.GetDocumentMessage() != nil:
		return m.GetDocumentMessage()
	case m.GetStickerMessage() != nil:
		return m.GetStickerMessage()
	}
	return nil
}

// mediaMeta is the file's type, name and length as the message says.
func mediaMeta(m *waE2E.Message) (mimeType, fileName string, length uint64) {
	switch {
	case m.GetImageMessage() != nil:
		f := m.GetImageMessage()
		return f.GetMimetype(), "", f.GetFileLength()
	case m.GetVideoMessage() != nil:
		f := m.GetVideoMessage()
		return f.GetMimetype(), "", f.GetFileLength()
	case m.GetAudioMessage() != nil:
		f := m.GetAudioMessage()
		return f.GetMimetype(), "", f.GetFileLength()
	case m.GetDocumentMessage() != nil:
		f := m.GetDocumentMessage()
		return f.GetMimetype(), f.GetFileName(), f.GetFileLength()
	case m.GetStickerMessage() != nil:
		f := m.GetStickerMessage()
		return f.GetMimetype(), "", f.GetFileLength()
	}
	return "", "", 0
}

// Media implements session.Conn: the kept reference, downloaded from WhatsApp's media servers
// and decrypted (and checked against its hashes) by whatsmeow.
func (c *conn) Media(ctx context.Context, messageID string) (session.Media, error) {
	m, err := c.d.media.get(ctx, c.sessionID, messageID)
	if err != nil {
		return session.Media{}, err
	}
	mimeType, fileName, length := mediaMeta(m)
	if length > session.MaxMediaBytes {
		return session.Media{}, fmt.Errorf("%w: %d bytes", session.ErrMediaTooLarge, length)
	}
	file := downloadable(m)
	if file == nil {
		return session.Media{}, session.ErrMediaNotFound
	}
	data, err := c.cli.Download(ctx, file)
	if err != nil {
		return session.Media{}, fmt.Errorf("whatsapp: download media: %w", err)
	}
	if len(data) > session.MaxMediaBytes {
		return session.Media{}, fmt.Errorf("%w: %d bytes", session.ErrMediaTooLarge, len(data))
	}
	return session.Media{MimeType: mimeType, FileName: fileName, Data: data}, nil
}
