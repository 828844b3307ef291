package session

import (
	"context"
	"errors"
	"fmt"
)

// MaxMediaBytes bounds a media file the gateway downloads for Laravel (WhatsApp's own limit for
// documents is 100 MB); a larger one is refused before it is downloaded.
const MaxMediaBytes = 100 << 20

// Media is the decrypted file of a message a session received.
type Media struct {
	MimeType string
	// FileName is the document's name ("" for images, videos, audio, stickers).
	FileName string
	Data     []byte
}

// Errors of Manager.Media.
var (
	// ErrMediaNotFound: the session received no media message with this id (or its reference
	// expired).
	ErrMediaNotFound = errors.New("session: no media message with this id")
	// ErrMediaTooLarge: the file is over MaxMediaBytes.
	ErrMediaTooLarge = errors.New("session: media file over the size bound")
)

// Media downloads and decrypts the file of a media message the session received (WhatsApp keeps
// the encrypted blob; the gateway kept its reference and keys when the message arrived). The
// session's WhatsApp connection must be up.
func (m *Manager) Media(ctx context.Context, id, messageID string) (Media, error) {
	s := m.lookup(id)
	if s == nil {
		return Media{}, ErrNotFound
	}
	s.mu.Lock()
	conn := s.conn
	s.mu.Unlock()
	if conn == nil || !conn.LoggedIn() {
		return Media{}, ErrNotConnected
	}
	md, err := conn.Media(ctx, messageID)
	if err != nil {
		return Media{}, fmt.Errorf("session %s: media of %s: %w", id, messageID, err)
	}
	return md, nil
}
