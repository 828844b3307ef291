package laravel

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestTheOpenAPIEnumsAreTheGoMessageTypesAndReceiptStatuses(t *testing.T) {
	d := loadOpenAPI(t)
	var types, statuses []string
	for _, m := range MessageTypes {
		types = append(types, string(m))
	}
	for _, s := range ReceiptStatuses {
		statuses = append(statuses, string(s))
	}
	if got := toStrings(at(t, d, "components", "schemas", "MessageType", "enum")); !slices.Equal(got, types) {
		t.Errorf("message type enum %v, want %v", got, types)
	}
	if got := toStrings(at(t, d, "components", "schemas", "ReceiptStatus", "enum")); !slices.Equal(got, statuses) {
		t.Errorf("receipt status enum %v, want %v", got, statuses)
	}
}

func TestReceiptStatusesOnlyMoveForward(t *testing.T) {
	for i, s := range ReceiptStatuses {
		if s.Rank() != i+1 {
			t.Errorf("%s has rank %d, want %d (delivered < read < played)", s, s.Rank(), i+1)
		}
	}
	if ReceiptStatus("seen").Rank() != 0 {
		t.Error("an unknown status has a rank")
	}
}

func TestMessageAndReceiptItemsValidate(t *testing.T) {
	at := time.Unix(1_800_000_000, 0)
	good := MessageItem{SessionID: "s1", MessageID: "A1", Chat: "5511@s.whatsapp.net", Sender: "5511@s.whatsapp.net",
		Type: MessageText, Text: "hola", Timestamp: at, Sequence: 1}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid message: %v", err)
	}
	for name, mutate := range map[string]func(*MessageItem){
		"bad session id":    func(m *MessageItem) { m.SessionID = "a b" },
		"no message id":     func(m *MessageItem) { m.MessageID = "" },
		"long message id":   func(m *MessageItem) { m.MessageID = strings.Repeat("A", 129) },
		"no chat":           func(m *MessageItem) { m.Chat = "" },
		"no type":           func(m *MessageItem) { m.Type = "" },
		"no sequence":       func(m *MessageItem) { m.Sequence = 0 },
		"negative sequence": func(m *MessageItem) { m.Sequence = -3 },
	} {
		m := good
		mutate(&m)
		if m.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	r := ReceiptItem{SessionID: "s1", MessageID: "OUT1", Status: ReceiptRead, Timestamp: at, Sequence: 2}
	if err := r.Validate(); err != nil {
		t.Fatalf("valid receipt: %v", err)
	}
	r.Status = "seen"
	if r.Validate() == nil {
		t.Error("a receipt with an unknown status was accepted")
	}
}

// Every batch endpoint, of session state and of messages alike, goes through one request path:
// POSTed to its path with the bearer token, its Idempotency-Key and a v2 signature that covers
// the key; a 503 with Retry-After is a retryable StatusError naming the endpoint; a 2xx answer's
// per-item result is decoded; the observer sees the endpoint's name.
func TestEveryBatchEndpointIsSignedKeyedAndClassifiedAlike(t *testing.T) {
	at := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		endpoint, path string
		post           func(c *Client, key string) (BatchResult, error)
	}{
		{EndpointQRBatch, PathQRBatch, func(c *Client, key string) (BatchResult, error) {
			return c.PostQRBatch(context.Background(), key, QRBatch{QRs: []QRItem{{SessionID: "s1", QR: "2@q", Version: 1}}})
		}},
		{EndpointStatusBatch, PathStatusBatch, func(c *Client, key string) (BatchResult, error) {
			return c.PostStatusBatch(context.Background(), key, StatusBatch{Statuses: []StatusItem{{SessionID: "s1", EstadoQR: StatusConnected, Version: 2}}})
		}},
		{EndpointMsgBatch, PathMessageBatch, func(c *Client, key string) (BatchResult, error) {
			return c.PostMessageBatch(context.Background(), key, MessageBatch{Messages: []MessageItem{{SessionID: "s1", MessageID: "A1",
				Chat: "5511@s.whatsapp.net", Sender: "5511@s.whatsapp.net", Type: MessageText, Text: "hola", Timestamp: at, Sequence: 1}}})
		}},
		{EndpointRcptBatch, PathReceiptBatch, func(c *Client, key string) (BatchResult, error) {
			return c.PostReceiptBatch(context.Background(), key, ReceiptBatch{Receipts: []ReceiptItem{{SessionID: "s1", MessageID: "OUT1",
				Chat: "5511@s.whatsapp.net", Sender: "5511@s.whatsapp.net", Status: ReceiptRead, Timestamp: at, Sequence: 2}}})
		}},
	} {
		t.Run(tc.endpoint, func(t *testing.T) {
			secret := []byte("s3cret")
			verifier := &SignatureVerifier{Secrets: [][]byte{secret}, RequireV2: true, Replay: NewReplayGuard(16)}
			attempts := 0
			c, obs := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				switch _, err := verifier.Verify(Incoming(r, body), time.Now()); {
				case r.Method != http.MethodPost || r.URL.Path != tc.path:
					http.Error(w, "wrong route "+r.Method+" "+r.URL.Path, http.StatusBadRequest)
				case r.Header.Get("Authorization") != "Bearer tok" || r.Header.Get(HeaderIdempotencyKey) != "batch-7":
					http.Error(w, "no bearer or key", http.StatusUnauthorized)
				case err != nil:
					http.Error(w, err.Error(), http.StatusUnauthorized)
				case attempts == 0:
					attempts++
					w.Header().Set("Retry-After", "7")
					w.WriteHeader(http.StatusServiceUnavailable)
					_, _ = w.Write([]byte(`{"message":"down for maintenance"}`))
				default:
					_, _ = w.Write([]byte(`{"success":true,"updated":1}`))
				}
			}, func(cfg *ClientConfig) { cfg.Secret = secret })

			_, err := tc.post(c, "batch-7")
			var se *StatusError
			if !errors.As(err, &se) || se.Status != http.StatusServiceUnavailable || se.Endpoint != tc.endpoint ||
				se.Message != "down for maintenance" || !Retryable(err) || RetryAfter(err) != 7*time.Second {
				t.Fatalf("first attempt: %v, want a retryable 503 of %s after 7 s", err, tc.endpoint)
			}
			res, err := tc.post(c, "batch-7") // the retry is signed afresh: not refused as a replay
			if err != nil || !res.Success || res.Updated != 1 {
				t.Fatalf("retry: %+v, %v", res, err)
			}
			if want := []observed{{tc.endpoint, 503}, {tc.endpoint, 200}}; !slices.Equal(*obs, want) {
				t.Fatalf("observer saw %+v, want %+v", *obs, want)
			}
		})
	}
}

// The legacy one-item endpoints share that path without an Idempotency-Key: Laravel applies an
// item by its version or message id, so a repeat needs no key.
func TestLegacyPostsAreSignedWithoutAnIdempotencyKey(t *testing.T) {
	at := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		endpoint, path string
		post           func(c *Client) error
	}{
		{EndpointQR, PathQR, func(c *Client) error {
			return c.PostQR(context.Background(), QRUpdate{SessionID: "s1", QR: "2@q"})
		}},
		{EndpointStatus, PathStatus, func(c *Client) error {
			return c.PostStatus(context.Background(), StatusUpdate{SessionID: "s1", EstadoQR: StatusConnected})
		}},
		{EndpointMessage, PathMessage, func(c *Client) error {
			return c.PostMessage(context.Background(), MessageItem{SessionID: "s1", MessageID: "A1", Chat: "5511@s.whatsapp.net",
				Sender: "5511@s.whatsapp.net", Type: MessageText, Text: "hola", Timestamp: at, Sequence: 1})
		}},
		{EndpointReceipt, PathReceipt, func(c *Client) error {
			return c.PostReceipt(context.Background(), ReceiptItem{SessionID: "s1", MessageID: "OUT1", Status: ReceiptRead, Timestamp: at, Sequence: 2})
		}},
	} {
		t.Run(tc.endpoint, func(t *testing.T) {
			secret := []byte("s3cret")
			verifier := &SignatureVerifier{Secrets: [][]byte{secret}, RequireV2: true}
			c, obs := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				switch _, err := verifier.Verify(Incoming(r, body), time.Now()); {
				case r.Method != http.MethodPost || r.URL.Path != tc.path:
					http.Error(w, "wrong route "+r.Method+" "+r.URL.Path, http.StatusBadRequest)
				case err != nil || r.Header.Get(HeaderIdempotencyKey) != "":
					http.Error(w, "unsigned or keyed", http.StatusUnauthorized)
				default:
					http.Error(w, `{"message":"boom"}`, http.StatusInternalServerError)
				}
			}, func(cfg *ClientConfig) { cfg.Secret = secret })
			err := tc.post(c)
			var se *StatusError
			if !errors.As(err, &se) || se.Status != http.StatusInternalServerError || se.Endpoint != tc.endpoint || Retryable(err) {
				t.Fatalf("got %v, want the 500 of %s, not retryable", err, tc.endpoint)
			}
			if want := []observed{{tc.endpoint, 500}}; !slices.Equal(*obs, want) {
				t.Fatalf("observer saw %+v, want %+v", *obs, want)
			}
		})
	}
}
