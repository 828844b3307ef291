package conform

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"wagate/gateway/laravel"
)

func runMessages(t *testing.T, h http.Handler, secret []byte) (Report, string) {
	t.Helper()
	ts := httptest.NewServer(h)
	defer ts.Close()
	var out bytes.Buffer
	rep, err := Run(t.Context(), Options{URL: ts.URL, Token: token, Secret: secret, Client: ts.Client(), Out: &out, Messages: true})
	if err != nil {
		t.Fatal(err)
	}
	return rep, out.String()
}

// rewriteMessageBatches edits the items of message and receipt batches before the target sees them.
func rewriteMessageBatches(h http.Handler, edit func(path string, items []map[string]any)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == laravel.PathMessageBatch || r.URL.Path == laravel.PathReceiptBatch {
			body, _ := io.ReadAll(r.Body)
			var doc map[string][]map[string]any
			if json.Unmarshal(body, &doc) == nil {
				for _, items := range doc {
					edit(r.URL.Path, items)
				}
				body, _ = json.Marshal(doc)
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
		}
		h.ServeHTTP(w, r)
	})
}

func TestFakelaravelConformsWithTheMessageChecks(t *testing.T) {
	secret := []byte("shh")
	rep, out := runMessages(t, fake(t, secret), secret)
	if !rep.Passed() || len(rep.Checks) != 26+len((&runner{}).messageChecks()) {
		t.Fatalf("fakelaravel with the message checks failed:\n%s", out)
	}
	if !strings.Contains(out, "PASS  receipts: a receipt applies only when it moves the status forward") {
		t.Fatalf("message checks did not run:\n%s", out)
	}
}

func TestRejectsATargetThatStoresAMessageTwice(t *testing.T) {
	var n atomic.Int64
	broken := rewriteMessageBatches(fake(t, nil), func(path string, items []map[string]any) {
		if path != laravel.PathMessageBatch {
			return
		}
		for _, it := range items {
			it["message_id"] = fmt.Sprintf("%v-%d", it["message_id"], n.Add(1)) // every copy looks new
		}
	})
	rep, out := runMessages(t, broken, nil)
	failedContain(t, rep, out, "messages: a legacy message posted twice", "messages: a batch stores each message once")
}

func TestRejectsATargetWhoseReceiptsGoBack(t *testing.T) {
	broken := rewriteMessageBatches(fake(t, nil), func(path string, items []map[string]any) {
		if path != laravel.PathReceiptBatch {
			return
		}
		for _, it := range items {
			if it["status"] == string(laravel.ReceiptDelivered) {
				it["message_id"] = fmt.Sprintf("%v-late", it["message_id"]) // a late delivered lands as new
			}
		}
	})
	rep, out := runMessages(t, broken, nil)
	failedContain(t, rep, out, "receipts: a receipt applies only when it moves the status forward")
}

func TestTheMessageChecksAreOptIn(t *testing.T) {
	rep, out := run(t, fake(t, nil), nil)
	if strings.Contains(out, "messages:") || len(rep.Checks) != 20 {
		t.Fatalf("message checks ran without Options.Messages:\n%s", out)
	}
}

func TestRejectsATargetThatRefusesAMessageTypeOrAnEmptyReceiptSender(t *testing.T) {
	broken := rewriteMessageBatches(fake(t, nil), func(path string, items []map[string]any) {
		for _, it := range items {
			switch {
			case path == laravel.PathMessageBatch && it["type"] == string(laravel.MessageSticker):
				it["type"] = "" // refused: 422
			case path == laravel.PathReceiptBatch && it["sender"] == "":
				it["status"] = "" // refused: 422
			}
		}
	})
	rep, out := runMessages(t, broken, nil)
	failedContain(t, rep, out, "messages: every message type is accepted", "receipts: every status is accepted")
}
