package fakewa

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/util/cbcutil"
	"go.mau.fi/whatsmeow/util/hkdfutil"
)

// MediaHost is the media server name in the messages' URLs; clients dialling fakewa reach it
// through the same test-only dialer as the chat socket.
const MediaHost = "mmg.whatsapp.net"

// mediaPathPrefix starts the direct path of every blob fakewa serves.
const mediaPathPrefix = "/v/t62.fakewa/"

// Media kinds a phone can send.
const (
	MediaImage    = "image"
	MediaDocument = "document"
)

// maxMediaBytes bounds one media file a phone sends.
const maxMediaBytes = 16 << 20

// PhoneMedia is a file a phone attaches: the phone encrypts it as WhatsApp does (a random media
// key, AES-CBC and a truncated HMAC) and uploads the blob, which the server then serves to whoever
// downloads it with the message's metadata.
type PhoneMedia struct {
	// Kind is MediaImage or MediaDocument.
	Kind     string `json:"kind"`
	MimeType string `json:"mime_type"`
	FileName string `json:"file_name,omitempty"`
	// Data is the file (base64 in JSON); when empty, Size random bytes are sent.
	Data []byte `json:"data,omitempty"`
	Size int    `json:"size,omitempty"`
}

func (m *PhoneMedia) validate() error {
	switch {
	case m.Kind != MediaImage && m.Kind != MediaDocument:
		return fmt.Errorf("%w: media kind must be %s or %s, got %q", ErrBadMessage, MediaImage, MediaDocument, m.Kind)
	case m.MimeType == "":
		return fmt.Errorf("%w: media without a mime type", ErrBadMessage)
	case len(m.Data) == 0 && (m.Size <= 0 || m.Size > maxMediaBytes):
		return fmt.Errorf("%w: media needs data or a size of 1 to %d bytes", ErrBadMessage, maxMediaBytes)
	case len(m.Data) > maxMediaBytes:
		return fmt.Errorf("%w: media over %d bytes", ErrBadMessage, maxMediaBytes)
	}
	return nil
}

// mediaKeyInfo is the HKDF info of a media kind (whatsmeow's MediaType).
func mediaKeyInfo(kind string) []byte {
	if kind == MediaDocument {
		return []byte("WhatsApp Document Keys")
	}
	return []byte("WhatsApp Image Keys")
}

// encryptedMedia is an uploaded file: the blob served and the metadata the message carries.
type encryptedMedia struct {
	blob                      []byte
	directPath                string
	mediaKey, fileSHA, encSHA []byte
	length                    uint64
}

// encryptMedia encrypts data as a phone uploading media does.
func encryptMedia(kind string, data []byte) (*encryptedMedia, error) {
	mediaKey := make([]byte, 32)
	rand.Read(mediaKey)
	expanded := hkdfutil.SHA256(mediaKey, nil, mediaKeyInfo(kind), 112)
	iv, cipherKey, macKey := expanded[:16], expanded[16:48], expanded[48:80]
	ciphertext, err := cbcutil.Encrypt(cipherKey, iv, data)
	if err != nil {
		return nil, fmt.Errorf("fakewa: encrypt media: %w", err)
	}
	mac := hmac.New(sha256.New, macKey)
	mac.Write(iv)
	mac.Write(ciphertext)
	blob := append(ciphertext, mac.Sum(nil)[:10]...)
	fileSHA, encSHA := sha256.Sum256(data), sha256.Sum256(blob)
	var name [12]byte
	rand.Read(name[:])
	return &encryptedMedia{
		blob:       blob,
		directPath: mediaPathPrefix + base64.RawURLEncoding.EncodeToString(name[:]) + ".enc?ccb=11-4",
		mediaKey:   mediaKey, fileSHA: fileSHA[:], encSHA: encSHA[:], length: uint64(len(data)),
	}, nil
}

// mediaStore keeps uploaded blobs by path, bounded in total bytes (the oldest go first).
type mediaStore struct {
	mu    sync.Mutex
	limit int
	total int
	order []string
	blobs map[string][]byte
}

func newMediaStore(limit int) *mediaStore {
	return &mediaStore{limit: limit, blobs: make(map[string][]byte)}
}

func (m *mediaStore) put(path string, blob []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for m.total+len(blob) > m.limit && len(m.order) > 0 {
		old := m.order[0]
		m.order = m.order[1:]
		m.total -= len(m.blobs[old])
		delete(m.blobs, old)
	}
	m.blobs[path] = blob
	m.order = append(m.order, path)
	m.total += len(blob)
}

func (m *mediaStore) get(path string) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.blobs[path]
	return b, ok
}

// mediaMessage builds the image or document message of m, uploading its encrypted file.
func (s *Server) mediaMessage(m PhoneMessage, ctx *waE2E.ContextInfo) (*waE2E.Message, error) {
	data := m.Media.Data
	if len(data) == 0 {
		data = make([]byte, m.Media.Size)
		rand.Read(data)
	}
	enc, err := encryptMedia(m.Media.Kind, data)
	if err != nil {
		return nil, err
	}
	s.media.put(strings.SplitN(enc.directPath, "?", 2)[0], enc.blob)
	url := "https://" + MediaHost + enc.directPath
	now := time.Now().Unix()
	if m.Media.Kind == MediaDocument {
		return &waE2E.Message{DocumentMessage: &waE2E.DocumentMessage{
			URL: proto.String(url), DirectPath: proto.String(enc.directPath), Mimetype: proto.String(m.Media.MimeType),
			Caption: optionalString(m.Text), FileName: optionalString(m.Media.FileName), FileLength: proto.Uint64(enc.length),
			MediaKey: enc.mediaKey, FileSHA256: enc.fileSHA, FileEncSHA256: enc.encSHA,
			MediaKeyTimestamp: proto.Int64(now), ContextInfo: ctx,
		}}, nil
	}
	return &waE2E.Message{ImageMessage: &waE2E.ImageMessage{
		URL: proto.String(url), DirectPath: proto.String(enc.directPath), Mimetype: proto.String(m.Media.MimeType),
		Caption: optionalString(m.Text), FileLength: proto.Uint64(enc.length),
		MediaKey: enc.mediaKey, FileSHA256: enc.fileSHA, FileEncSHA256: enc.encSHA,
		MediaKeyTimestamp: proto.Int64(now), ContextInfo: ctx,
	}}, nil
}

func optionalString(s string) *string {
	if s == "" {
		return nil
	}
	return proto.String(s)
}

// serveMedia answers a media download (GET of a blob's direct path) and records it.
func (s *Server) serveMedia(w http.ResponseWriter, r *http.Request) {
	blob, ok := s.media.get(r.URL.Path)
	if !ok {
		http.Error(w, "media not found", http.StatusNotFound)
		s.events.add(Event{Kind: EventMediaDownloaded, Detail: r.URL.Path, Code: http.StatusNotFound})
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(blob)))
	w.Write(blob) //nolint:errcheck // the client may be gone
	s.events.add(Event{Kind: EventMediaDownloaded, Detail: r.URL.Path, Code: http.StatusOK})
}

// mediaConnResult answers <media_conn/>: the media hosts (all reached through the test dialer).
func mediaConnResult(n *waBinary.Node) waBinary.Node {
	return iqResult(n, waBinary.Node{Tag: "media_conn", Attrs: waBinary.Attrs{
		"auth": "fakewa", "ttl": "3600", "auth_ttl": "3600", "max_buckets": "12",
	}, Content: []waBinary.Node{{Tag: "host", Attrs: waBinary.Attrs{"hostname": MediaHost}}}})
}
