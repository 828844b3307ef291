package fakewa

import (
	"bytes"
	"context"
	"testing"
	"time"

	"wagate/gateway/wadial"
)

func TestAPhonesImageAndDocumentArriveWithRealMetadataAndTheirFilesDownloadFromTheServer(t *testing.T) {
	srv := startServer(t, Config{})
	tc, jid := pairedClient(t, srv, "5511900000306")
	// The client's media downloads go through the same test-only dialer as its chat socket.
	tc.cli.SetMediaHTTPClient((wadial.Config{Addr: srv.Addr(), RootPubKey: testRootKey.Pub[:]}).HTTPClient())

	photo := bytes.Repeat([]byte("a photo of the blue model "), 400)
	image := sendFromPhone(t, srv, jid, PhoneMessage{Text: "¿este?", Media: &PhoneMedia{Kind: MediaImage, MimeType: "image/jpeg", Data: photo}})
	doc := sendFromPhone(t, srv, jid, PhoneMessage{Quote: image, Media: &PhoneMedia{Kind: MediaDocument, MimeType: "application/pdf", FileName: "factura.pdf", Size: 70_000}})

	got := nextMessage(t, tc, image)
	img := got.Message.GetImageMessage()
	if img == nil || img.GetCaption() != "¿este?" || img.GetMimetype() != "image/jpeg" || img.GetFileLength() != uint64(len(photo)) {
		t.Fatalf("image message %v", got.Message)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	data, err := tc.cli.Download(ctx, img)
	if err != nil {
		t.Fatalf("download the image: %v", err)
	}
	if !bytes.Equal(data, photo) {
		t.Fatalf("downloaded %d bytes that are not the photo", len(data))
	}

	got = nextMessage(t, tc, doc)
	d := got.Message.GetDocumentMessage()
	if d == nil || d.GetFileName() != "factura.pdf" || d.GetContextInfo().GetStanzaID() != image {
		t.Fatalf("document message %v, want factura.pdf replying to %s", got.Message, image)
	}
	data, err = tc.cli.Download(ctx, d)
	if err != nil || len(data) != 70_000 {
		t.Fatalf("download the document: %d bytes, %v", len(data), err)
	}
	downloads := 0
	for _, e := range srv.Events() {
		if e.Kind == EventMediaDownloaded && e.Code == 200 {
			downloads++
		}
	}
	if downloads != 2 {
		t.Fatalf("server recorded %d media downloads, want 2", downloads)
	}
	if e := delivered(t, srv, image); e.Detail != MediaImage {
		t.Fatalf("image delivery recorded as %q", e.Detail)
	}
	waitReceipts(t, srv, image, doc)
}

func TestMediaIsValidatedBeforeAnythingIsSent(t *testing.T) {
	srv := startServer(t, Config{})
	_, jid := pairedClient(t, srv, "5511900000307")
	ctx := context.Background()
	for _, m := range []PhoneMessage{
		{From: contactPhone, Media: &PhoneMedia{Kind: "video", MimeType: "video/mp4", Size: 10}},
		{From: contactPhone, Media: &PhoneMedia{Kind: MediaImage, Size: 10}},
		{From: contactPhone, Media: &PhoneMedia{Kind: MediaImage, MimeType: "image/png"}},
		{From: contactPhone, ReactTo: "X", Text: "👍", Media: &PhoneMedia{Kind: MediaImage, MimeType: "image/png", Size: 1}},
	} {
		if _, err := srv.SendMessage(ctx, jid, m); err == nil {
			t.Errorf("media %+v accepted", *m.Media)
		}
	}
}
