package app_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"

	"wagate/fakelaravel"
	"wagate/gateway/config"
	"wagate/gateway/laravel"
	"wagate/simulator/fakewa"
)

// The in-process test world: fakewa, fakelaravel (alone or as the measuring front of the real
// Laravel app) on an httptest server, and the gateway (app.New) between them. Every end-to-end
// test of this package builds its world here; what differs between them is worldOptions.

// worldOptions say what differs between in-process worlds; the zero value is a legacy-mode
// gateway, a fakewa that sends delivery and read receipts (fakewa.ReceiptsDeliveredAndRead is its
// zero value) and a fakelaravel that takes laravelToken.
type worldOptions struct {
	// mode is the gateway's delivery mode (config.ModeLegacy when empty); batch mode runs on an
	// embedded Redis unless configure says otherwise.
	mode string
	// receipts is what fakewa's phones send back for the messages the gateway sends.
	receipts fakewa.ReceiptPolicy
	// laravel configures fakelaravel (its Logger is set here); with neither Token nor Upstream it
	// takes laravelToken.
	laravel fakelaravel.Config
	// configure changes the gateway's settings before it starts.
	configure func(*config.Config)
}

// newWorld starts fakewa, fakelaravel and the gateway as opts say, and stops them at the test's
// end.
func newWorld(t *testing.T, opts worldOptions) *inProcess {
	t.Helper()
	if opts.mode == "" {
		opts.mode = config.ModeLegacy
	}
	w := &inProcess{t: t, wa: startFakewa(t, opts.receipts)}
	w.laravel, w.lsrv = startFakeLaravel(t, opts.laravel)
	w.cfg = gatewayConfig(t, opts.mode, w.wa, w.lsrv.URL)
	if opts.configure != nil {
		opts.configure(&w.cfg)
	}
	w.startGateway()
	t.Cleanup(w.stopGateway)
	return w
}

// startFakewa starts a fakewa that trusts this process's root key, closes a stream it ends
// with an error after a second, and sends receipts as policy says.
func startFakewa(t *testing.T, policy fakewa.ReceiptPolicy) *fakewa.Server {
	t.Helper()
	wa, err := fakewa.New(fakewa.Config{RootKey: rootKey(), Logger: testLogger(), StreamErrorCloseDelay: time.Second, Receipts: policy})
	if err != nil {
		t.Fatal(err)
	}
	if err := wa.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = wa.Close() })
	return wa
}

// startFakeLaravel starts fakelaravel with cfg (laravelToken when it names neither a token nor
// an upstream) behind an httptest server.
func startFakeLaravel(t *testing.T, cfg fakelaravel.Config) (*fakelaravel.Server, *httptest.Server) {
	t.Helper()
	if cfg.Token == "" && cfg.Upstream == nil {
		cfg.Token = laravelToken
	}
	cfg.Logger = testLogger()
	lv, err := fakelaravel.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lv.Close() })
	srv := httptest.NewServer(lv)
	t.Cleanup(srv.Close)
	return lv, srv
}

// gatewayConfig is what every in-process gateway of these tests starts from: mode (batch on an
// embedded Redis), a free loopback port, the API token, Laravel at laravelURL with laravelToken,
// wa dialled without TLS and trusted by its root key, a private data directory, a 500 ms batch
// interval and short pairing and shutdown timeouts.
func gatewayConfig(t *testing.T, mode string, wa *fakewa.Server, laravelURL string) config.Config {
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.Mode = mode
	cfg.RedisEmbedded = mode == config.ModeBatch
	cfg.Batch.Interval = 500 * time.Millisecond
	cfg.APIToken = apiToken
	cfg.LaravelURL = laravelURL
	cfg.LaravelToken = laravelToken
	cfg.DataDir = t.TempDir()
	cfg.PairLoginTimeout = 5 * time.Second
	cfg.ShutdownTimeout = 10 * time.Second
	cfg.WAInsecureTest = true
	cfg.WADial = wa.Addr()
	cfg.WARootPubKey = fmt.Sprintf("%x", wa.RootPublicKey())
	return cfg
}

// client is a REST client of w's gateway as it listens now (a restart moves it).
func (w *inProcess) client() *client {
	return &client{t: w.t, base: w.gatewayURL(), hc: &http.Client{Timeout: 30 * time.Second}}
}

// metrics returns the gateway's /metrics text.
func (c *client) metrics() string {
	c.t.Helper()
	resp, err := c.hc.Get(c.base + "/metrics")
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// customerPhone is the customer who writes to the sessions of the messaging tests.
const customerPhone = "5511977770077"

// customerWriter returns a function that has customerPhone write m to the device jid through
// fakewa and returns the message's id.
func customerWriter(t *testing.T, ctx context.Context, wa *fakewa.Server, jid types.JID) func(m fakewa.PhoneMessage) string {
	return func(m fakewa.PhoneMessage) string {
		t.Helper()
		m.From = customerPhone
		id, err := wa.SendMessage(ctx, jid, m)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
}

// wantMessage is what Laravel must store of a message the customer wrote.
type wantMessage struct {
	id, text, quote, reactTo string
	typ                      laravel.MessageType
}

// checkStoredInOrder fails t unless Laravel stored exactly want, in that order with growing
// sequence numbers, each once, in customerPhone's chat and not from the session's own account.
func checkStoredInOrder(t *testing.T, stored []fakelaravel.StoredMessage, want []wantMessage) {
	t.Helper()
	if len(stored) != len(want) {
		t.Fatalf("Laravel stored %d messages, want %d: %+v", len(stored), len(want), stored)
	}
	for i, m := range stored {
		w := want[i]
		if m.MessageID != w.id || m.Text != w.text || m.Quote != w.quote || m.ReactTo != w.reactTo || m.Type != w.typ {
			t.Fatalf("stored message %d = %+v, want %+v", i, m.MessageItem, w)
		}
		if m.Deliveries != 1 || m.Chat != customerPhone+"@s.whatsapp.net" || m.FromMe {
			t.Fatalf("stored message %d delivered %d times from %s (from me %v)", i, m.Deliveries, m.Chat, m.FromMe)
		}
		if i > 0 && m.Sequence <= stored[i-1].Sequence {
			t.Fatalf("message %d has sequence %d after %d", i, m.Sequence, stored[i-1].Sequence)
		}
	}
}

// metricLines returns the sample lines of body whose series start with prefix.
func metricLines(body, prefix string) []string {
	var out []string
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, prefix) {
			out = append(out, line)
		}
	}
	return out
}

// conversation is what customerPhone writes in the messaging tests, in this order: a text, a
// reply to it, a reaction to it and, when photo is set, a photo with a caption.
type conversation struct {
	text, reply, reaction, image string
	photo                        []byte
}

// writeConversation has the customer write the conversation through write (customerWriter).
func writeConversation(write func(fakewa.PhoneMessage) string, withPhoto bool) conversation {
	var cv conversation
	cv.text = write(fakewa.PhoneMessage{Text: "hola, ¿tienen stock?"})
	cv.reply = write(fakewa.PhoneMessage{Text: "¿y en azul?", Quote: cv.text})
	cv.reaction = write(fakewa.PhoneMessage{Text: "👍", ReactTo: cv.text})
	if withPhoto {
		cv.photo = bytes.Repeat([]byte("blue model "), 1000)
		cv.image = write(fakewa.PhoneMessage{Text: "este", Media: &fakewa.PhoneMedia{Kind: fakewa.MediaImage, MimeType: "image/jpeg", Data: cv.photo}})
	}
	return cv
}

// want is what Laravel must store of the conversation, in order.
func (cv conversation) want() []wantMessage {
	want := []wantMessage{
		{cv.text, "hola, ¿tienen stock?", "", "", laravel.MessageText},
		{cv.reply, "¿y en azul?", cv.text, "", laravel.MessageText},
		{cv.reaction, "👍", "", cv.text, laravel.MessageReaction},
	}
	if cv.image != "" {
		want = append(want, wantMessage{cv.image, "este", "", "", laravel.MessageImage})
	}
	return want
}

// ids are the conversation's message ids, in order.
func (cv conversation) ids() []string {
	var ids []string
	for _, w := range cv.want() {
		ids = append(ids, w.id)
	}
	return ids
}

// checkPhoto fails t unless Laravel stored the photo's type, length and SHA-256 (never the file).
func (cv conversation) checkPhoto(t *testing.T, md *laravel.MessageMedia) {
	t.Helper()
	sum := sha256.Sum256(cv.photo)
	if md == nil || md.MimeType != "image/jpeg" || md.FileLength != uint64(len(cv.photo)) || md.FileSHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("image metadata in Laravel %+v, want the photo's type, length and SHA-256", md)
	}
}
