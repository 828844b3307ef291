package app_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"wagate/fakelaravel"
	"wagate/gateway/config"
	"wagate/gateway/laravel"
	"wagate/internal/laravelup"
	"wagate/internal/proctest"
	"wagate/simulator/fakewa"
)

// realLaravel starts the reference Laravel app of laravel/ (Debian's Laravel, private php-fpm and
// nginx masters on a free loopback port, a signing secret) for the test and stops it at its end.
// It skips the test when php-fpm is absent, unless CI or WAGATE_REQUIRE_SERVERS is set.
func realLaravel(t *testing.T) *laravelup.Instance {
	t.Helper()
	if fpm, _ := filepath.Glob("/usr/sbin/php-fpm*"); len(fpm) == 0 && os.Getenv("CI") == "" && os.Getenv("WAGATE_REQUIRE_SERVERS") == "" {
		t.Skip("php-fpm is not installed (make laravel-up installs it; CI always runs this test)")
	}
	// Not t.TempDir: its parent is private, and FPM and nginx workers run as www-data under root.
	dir, err := os.MkdirTemp("", "wagate-laravel-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // package install included
	defer cancel()
	var out bytes.Buffer
	inst, err := laravelup.Start(ctx, laravelup.Options{Scripts: "../../laravel/scripts", Dir: filepath.Join(dir, "rt"), Port: port,
		Workers: 2, Token: laravelToken, Secret: hex.EncodeToString(secret), Output: &out})
	if err != nil {
		t.Fatalf("start the reference Laravel app: %v\n%s", err, out.String())
	}
	t.Cleanup(func() {
		if err := inst.Stop(); err != nil {
			t.Errorf("stop the reference Laravel app: %v", err)
		}
	})
	return inst
}

// realLaravelWorld is messagingWorld with the real Laravel app instead of fakelaravel: the gateway
// (mode, in process, the real whatsmeow client) talks to the app through fakelaravel's measuring
// front, which counts the requests by endpoint and reads the app's database as ground truth.
func realLaravelWorld(t *testing.T, app *laravelup.Instance, mode string) *inProcess {
	t.Helper()
	return newWorld(t, worldOptions{mode: mode, receipts: fakewa.ReceiptsDeliveredAndRead,
		laravel: fakelaravel.Config{AdminToken: "front-admin",
			Upstream: &fakelaravel.Upstream{URL: app.Env[laravelup.KeyURL], DBPath: app.Env[laravelup.KeyDB], Workers: 2}},
		configure: func(cfg *config.Config) {
			cfg.LaravelToken = app.Env[laravelup.KeyToken]
			cfg.LaravelSecret = app.Env[laravelup.KeySecret]
		}})
}

// The Done-when of incoming messages, against the real Laravel app: a customer's text, reply,
// reaction and image, written by a fakewa phone and decrypted by the real whatsmeow client, are
// stored by the app once each, in the order written, with their quote and reaction targets and the
// image's metadata; the read receipt of a message the gateway sent follows. In legacy mode they go
// one request each to /api/whatsapp/message and /receipt, in batch mode through the outbox to the
// batch endpoints only.
func TestACustomersMessagesReachTheRealLaravelAppInOrderOnce(t *testing.T) {
	app := realLaravel(t)
	for i, mode := range []string{config.ModeBatch, config.ModeLegacy} {
		t.Run(mode, func(t *testing.T) {
			w := realLaravelWorld(t, app, mode)
			ctx := context.Background()
			c := w.client()
			sid := "real_msg_" + mode
			jid := startAndPair(t, ctx, w, c, sid, fmt.Sprintf("1555777030%d", i))
			cv := writeConversation(customerWriter(t, ctx, w.wa, jid), true)
			var sent struct {
				MessageID string `json:"message_id"`
			}
			proctest.Eventually(t, "the gateway to send a message", 15*time.Second, func() (bool, string) {
				code := c.call("POST", "/sessions/"+sid+"/messages", map[string]string{"to": "+" + customerPhone, "text": "sí, hay"}, &sent)
				return code == 200 && sent.MessageID != "", fmt.Sprintf("%d %+v", code, sent) // 409 while Laravel's view catches up
			})

			var st fakelaravel.MessagesState
			proctest.Eventually(t, "the real app to store four messages and the read receipt", 60*time.Second, func() (bool, string) {
				var err error
				st, err = w.laravel.Messages(ctx, sid)
				read := len(st.Receipts) == 1 && st.Receipts[0].Status == laravel.ReceiptRead
				return err == nil && len(st.Messages) >= 4 && read, fmt.Sprintf("%+v %v", st, err)
			})
			checkStoredInOrder(t, st.Messages, cv.want())
			for i, m := range st.Messages { // what the app's own columns add
				if m.Sender != m.Chat || m.Timestamp.IsZero() {
					t.Fatalf("stored message %d: %+v, want the customer as sender and the time it was written", i, m.MessageItem)
				}
			}
			cv.checkPhoto(t, st.Messages[3].Media)
			if r := st.Receipts[0]; r.MessageID != sent.MessageID || r.Sequence <= st.Messages[3].Sequence {
				t.Fatalf("receipt %+v, want the read receipt of %s after the messages", r, sent.MessageID)
			}

			// The requests went to the endpoints of the mode and none failed.
			used, unused := fakelaravel.EndpointMessageBatch, fakelaravel.EndpointMessage
			if mode == config.ModeLegacy {
				used, unused = unused, used
			}
			proctest.Eventually(t, "the front to count the message requests", 10*time.Second, func() (bool, string) {
				eps := w.laravel.Stats().Endpoints
				if n := eps[unused].Requests; n != 0 {
					t.Fatalf("%s mode sent %d requests to %s", mode, n, unused)
				}
				got := eps[used]
				return got.Requests > 0 && got.StatusCodes["200"] == got.Requests, fmt.Sprintf("%s: %+v", used, got)
			})
			waitGatewayReceipts(t, w.wa, cv.ids()...)
		})
	}
}
