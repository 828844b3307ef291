package app_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"wagate/gateway/config"
	"wagate/internal/proctest"
	"wagate/simulator/fakewa"
)

// getMedia downloads a received message's file from the gateway: status, content type, body.
func getMedia(t *testing.T, base, session, messageID string) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", base+"/sessions/"+session+"/messages/"+messageID+"/media", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+apiToken)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), body
}

// A customer's image and document, decrypted by the real whatsmeow client, reach Laravel as
// metadata only; GET .../media downloads each file from fakewa's media server on demand and
// serves it decrypted with its type (and the document's name), also after a gateway restart;
// a text message has no media.
func TestACustomersMediaIsDownloadedOnDemandThroughTheGateway(t *testing.T) {
	w := newWorld(t, worldOptions{mode: config.ModeBatch, receipts: fakewa.ReceiptsDeliveredAndRead})
	ctx := context.Background()
	c := w.client()
	jid := startAndPair(t, ctx, w, c, "e2e_media", "15557770104")
	write := customerWriter(t, ctx, w.wa, jid)
	photo := bytes.Repeat([]byte("a blue shirt "), 4000)
	invoice := []byte("%PDF-1.4 invoice 7")
	image := write(fakewa.PhoneMessage{Text: "este", Media: &fakewa.PhoneMedia{Kind: fakewa.MediaImage, MimeType: "image/jpeg", Data: photo}})
	doc := write(fakewa.PhoneMessage{Media: &fakewa.PhoneMedia{Kind: fakewa.MediaDocument, MimeType: "application/pdf", FileName: "factura.pdf", Data: invoice}})
	text := write(fakewa.PhoneMessage{Text: "¿lo tienen?"})
	proctest.Eventually(t, "Laravel to store the three messages", 30*time.Second, func() (bool, string) {
		st, err := w.laravel.Messages(ctx, "e2e_media")
		return err == nil && len(st.Messages) == 3, fmt.Sprintf("%d %v", len(st.Messages), err)
	})
	check := func(when string) {
		t.Helper()
		for _, m := range []struct {
			id, contentType string
			data            []byte
		}{{image, "image/jpeg", photo}, {doc, "application/pdf", invoice}} {
			code, ct, body := getMedia(t, w.gatewayURL(), "e2e_media", m.id)
			if code != 200 || ct != m.contentType || !bytes.Equal(body, m.data) {
				t.Fatalf("%s: media of %s: %d %q, %d bytes, want 200 %q and the %d bytes the customer sent", when, m.id, code, ct, len(body), m.contentType, len(m.data))
			}
		}
		if code, _, _ := getMedia(t, w.gatewayURL(), "e2e_media", text); code != 404 {
			t.Fatalf("%s: media of a text message answered %d, want 404", when, code)
		}
	}
	check("before a restart")
	downloads := 0
	for _, e := range w.wa.Events() {
		if e.Kind == fakewa.EventMediaDownloaded && e.Code == 200 {
			downloads++
		}
	}
	if downloads != 2 {
		t.Fatalf("fakewa served %d media downloads, want 2 (one per file, none while the messages were delivered)", downloads)
	}

	w.restartGateway(ctx)
	c = w.client()
	proctest.Eventually(t, "the session to be connected again", 30*time.Second, func() (bool, string) {
		var s struct {
			Connected bool `json:"connected"`
		}
		code := c.call("GET", "/sessions/e2e_media", nil, &s)
		return code == 200 && s.Connected, fmt.Sprint(code, s)
	})
	check("after a restart")
}
