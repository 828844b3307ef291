package whatsapp

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	"go.mau.fi/whatsmeow/proto/waE2E"

	"wagate/gateway/internal/pgtest"
	"wagate/gateway/session"
	"wagate/gateway/storage"
)

// A received media message's reference is kept by session and message id, on SQLite and on
// Postgres alike: read back whole, once per id, nothing kept for a message without a file.
func TestMediaReferencesAreKeptBySessionAndMessage(t *testing.T) {
	stores := map[string]func(t *testing.T) storage.Options{
		"sqlite": func(t *testing.T) storage.Options { return storage.Options{DataDir: t.TempDir()} },
		"postgres": func(t *testing.T) storage.Options {
			if testing.Short() {
				t.Skip("starts PostgreSQL")
			}
			return storage.Options{DSN: pgtest.Start(t)}
		},
	}
	for name, opts := range stores {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db, err := storage.Open(ctx, opts(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = db.Close() })
			s, err := newMediaStore(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			img := &waE2E.Message{ImageMessage: &waE2E.ImageMessage{DirectPath: proto.String("/v/t62.fakewa/1"), MediaKey: []byte{1, 2, 3},
				Mimetype: proto.String("image/jpeg"), FileLength: proto.Uint64(9), Caption: proto.String("este")}}
			for range 2 { // a redelivery keeps the first
				if err := s.put(ctx, "s1", "3EB0IMG", img); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.put(ctx, "s1", "3EB0TXT", &waE2E.Message{Conversation: proto.String("hola")}); err != nil {
				t.Fatal(err)
			}
			got, err := s.get(ctx, "s1", "3EB0IMG")
			if err != nil || !proto.Equal(got, img) {
				t.Fatalf("read back %v, %v; want the image message", got, err)
			}
			for _, miss := range [][2]string{{"s1", "3EB0TXT"}, {"s2", "3EB0IMG"}, {"s1", "nope"}} {
				if _, err := s.get(ctx, miss[0], miss[1]); !errors.Is(err, session.ErrMediaNotFound) {
					t.Errorf("%v: %v, want ErrMediaNotFound", miss, err)
				}
			}
			if ct, name, n := mediaMeta(got); ct != "image/jpeg" || name != "" || n != 9 {
				t.Errorf("meta %q %q %d", ct, name, n)
			}
			// The table survives a second start (CREATE IF NOT EXISTS, prune).
			if _, err := newMediaStore(ctx, db); err != nil {
				t.Fatal(err)
			}
		})
	}
}
