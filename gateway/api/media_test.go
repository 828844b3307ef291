package api_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"wagate/gateway/api"
	"wagate/gateway/session"
)

// Media implements api.SessionService for forward_test.go's notOwner.
func (notOwner) Media(context.Context, string, string) (session.Media, error) {
	return session.Media{}, fmt.Errorf("media: %w", session.ErrNotOwner)
}

// mediaSessions is a session service whose sessions received the media files in files.
type mediaSessions struct {
	nilManager
	files map[string]session.Media
	err   error
}

func (m mediaSessions) Media(_ context.Context, id, messageID string) (session.Media, error) {
	if m.err != nil {
		return session.Media{}, m.err
	}
	md, ok := m.files[id+"/"+messageID]
	if !ok {
		return session.Media{}, session.ErrMediaNotFound
	}
	return md, nil
}

func TestMediaIsServedWithItsTypeLengthAndName(t *testing.T) {
	photo := []byte("\xff\xd8\xff\xe0 a jpeg")
	svc := mediaSessions{files: map[string]session.Media{
		"s1/3EB0PHOTO": {MimeType: "image/jpeg", Data: photo},
		"s1/3EB0DOC":   {MimeType: "application/pdf", FileName: "factura 7.pdf", Data: []byte("%PDF-1.4")},
		"s1/3EB0ODD":   {MimeType: "not a type", Data: []byte("x")},
	}}
	h, err := api.New(api.Config{Token: token, Sessions: svc, Reader: nilManager{}, Activity: &activity{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, method, path       string
		code                     int
		contentType, disposition string
		body                     string
	}{
		{"an image", "GET", "/sessions/s1/messages/3EB0PHOTO/media", 200, "image/jpeg", "attachment", string(photo)},
		{"a document keeps its name", "GET", "/sessions/s1/messages/3EB0DOC/media", 200, "application/pdf", `attachment; filename="factura 7.pdf"`, "%PDF-1.4"},
		{"a malformed type is served as bytes", "GET", "/sessions/s1/messages/3EB0ODD/media", 200, "application/octet-stream", "attachment", "x"},
		{"HEAD has the headers only", "HEAD", "/sessions/s1/messages/3EB0PHOTO/media", 200, "image/jpeg", "attachment", ""},
		{"no such message", "GET", "/sessions/s1/messages/3EB0NOPE/media", 404, "application/json", "", `"media_not_found"`},
		{"a message id with a dot", "GET", "/sessions/s1/messages/a.b/media", 400, "application/json", "", `"invalid_message_id"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(c.method, c.path, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != c.code || rec.Header().Get("Content-Type") != c.contentType || rec.Header().Get("Content-Disposition") != c.disposition {
				t.Fatalf("%d %q %q, want %d %q %q", rec.Code, rec.Header().Get("Content-Type"), rec.Header().Get("Content-Disposition"), c.code, c.contentType, c.disposition)
			}
			if !strings.Contains(rec.Body.String(), c.body) || (c.code == 200 && rec.Body.String() != c.body) {
				t.Fatalf("body %q, want %q", rec.Body.String(), c.body)
			}
			if c.code == 200 && c.method == "GET" && rec.Header().Get("Content-Length") != fmt.Sprint(len(c.body)) {
				t.Fatalf("Content-Length %q, want %d", rec.Header().Get("Content-Length"), len(c.body))
			}
		})
	}
}

func TestMediaOverTheBoundOrOfADisconnectedSessionIsRefused(t *testing.T) {
	for _, c := range []struct {
		err     error
		code    int
		errCode string
	}{
		{fmt.Errorf("x: %w", session.ErrMediaTooLarge), 422, "media_too_large"},
		{session.ErrNotConnected, 409, "session_not_connected"},
		{session.ErrNotFound, 404, "session_not_found"},
	} {
		h, err := api.New(api.Config{Token: token, Sessions: mediaSessions{err: c.err}, Reader: nilManager{}, Activity: &activity{}})
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest("GET", "/sessions/s1/messages/3EB0BIG/media", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.code || !strings.Contains(rec.Body.String(), `"`+c.errCode+`"`) {
			t.Errorf("%v: %d %s, want %d %s", c.err, rec.Code, rec.Body, c.code, c.errCode)
		}
	}
}
