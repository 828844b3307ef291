package app_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"wagate/fakelaravel"
	"wagate/gateway/config"
	"wagate/gateway/laravel"
	"wagate/internal/proctest"
	"wagate/simulator/fakewa"
)

// messagingWorld starts fakewa (sending delivery and read receipts for what the gateway sends),
// fakelaravel and the gateway in mode, in process.
func messagingWorld(t *testing.T, mode string) *inProcess {
	t.Helper()
	return newWorld(t, worldOptions{mode: mode, receipts: fakewa.ReceiptsDeliveredAndRead})
}

// waitGatewayReceipts waits until the gateway's whatsmeow client acknowledged ids to fakewa, so
// no receipt write is in flight when the test stops the gateway.
func waitGatewayReceipts(t *testing.T, wa *fakewa.Server, ids ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, id := range ids {
		if _, err := wa.WaitEvent(ctx, func(e fakewa.Event) bool {
			return e.Kind == fakewa.EventDeviceReceipt && e.MessageID == id && e.Detail != "retry"
		}); err != nil {
			t.Fatalf("no receipt from the gateway for %s: %v", id, err)
		}
	}
}

func TestLegacyModeACustomersMessagesAndTheReceiptsOfASentMessageReachLaravelInOrderOnce(t *testing.T) {
	w := messagingWorld(t, config.ModeLegacy)
	ctx := context.Background()
	c := w.client()
	jid := startAndPair(t, ctx, w, c, "e2e_msg", "15557770101")

	write := customerWriter(t, ctx, w.wa, jid)
	cv := writeConversation(write, true)

	var sent struct {
		MessageID string `json:"message_id"`
	}
	if code := c.call("POST", "/sessions/e2e_msg/messages", map[string]string{"to": "+" + customerPhone, "text": "sí, hay"}, &sent); code != 200 || sent.MessageID == "" {
		t.Fatalf("send: %d %+v", code, sent)
	}

	var st fakelaravel.MessagesState
	proctest.Eventually(t, "Laravel to store four messages and the read receipt", 30*time.Second, func() (bool, string) {
		var err error
		st, err = w.laravel.Messages(ctx, "e2e_msg")
		read := len(st.Receipts) == 1 && st.Receipts[0].Status == laravel.ReceiptRead
		return err == nil && len(st.Messages) == 4 && read, fmt.Sprintf("%+v %v", st, err)
	})
	checkStoredInOrder(t, st.Messages, cv.want())
	cv.checkPhoto(t, st.Messages[3].Media)
	if r := st.Receipts[0]; r.MessageID != sent.MessageID || r.Sequence <= st.Messages[3].Sequence {
		t.Fatalf("receipt %+v, want the read receipt of %s after the messages", r, sent.MessageID)
	}
	waitGatewayReceipts(t, w.wa, cv.ids()...)

	// What the customer writes while the gateway is down arrives when it is back, after the rest.
	w.stopGateway()
	meanwhile := write(fakewa.PhoneMessage{Text: "¿siguen ahí?"})
	w.startGateway()
	proctest.Eventually(t, "Laravel to store the message written while the gateway was down", 30*time.Second, func() (bool, string) {
		var err error
		st, err = w.laravel.Messages(ctx, "e2e_msg")
		return err == nil && len(st.Messages) == 5, fmt.Sprintf("%d messages, %v", len(st.Messages), err)
	})
	if last := st.Messages[4]; last.MessageID != meanwhile || last.Text != "¿siguen ahí?" || last.Deliveries != 1 ||
		last.Sequence <= st.Receipts[0].Sequence {
		t.Fatalf("after the restart Laravel stored %+v, want %s once, numbered after everything before", last, meanwhile)
	}
	waitGatewayReceipts(t, w.wa, meanwhile)
}

// Batch mode: a customer's text, reply and reaction, decrypted by the real whatsmeow client, reach
// Laravel through the outbox and the message batch endpoint once each and in the order written;
// the read receipt of a message the gateway sent arrives through the receipt batch endpoint;
// nothing goes to the legacy endpoints and nothing is dropped; statuses keep flowing; a message
// written while the gateway is stopped arrives once after the restart, numbered after the rest.
func TestBatchModeACustomersMessagesReachLaravelInOrderOnceThroughTheOutbox(t *testing.T) {
	w := messagingWorld(t, config.ModeBatch)
	ctx := context.Background()
	c := w.client()
	jid := startAndPair(t, ctx, w, c, "e2e_msg_batch", "15557770102")
	write := customerWriter(t, ctx, w.wa, jid)
	cv := writeConversation(write, false)
	var sent struct {
		MessageID string `json:"message_id"`
	}
	if code := c.call("POST", "/sessions/e2e_msg_batch/messages", map[string]string{"to": "+" + customerPhone, "text": "sí, hay"}, &sent); code != 200 || sent.MessageID == "" {
		t.Fatalf("send: %d %+v", code, sent)
	}

	var st fakelaravel.MessagesState
	proctest.Eventually(t, "Laravel to store three messages and the read receipt", 30*time.Second, func() (bool, string) {
		var err error
		st, err = w.laravel.Messages(ctx, "e2e_msg_batch")
		read := len(st.Receipts) == 1 && st.Receipts[0].Status == laravel.ReceiptRead
		return err == nil && len(st.Messages) == 3 && read, fmt.Sprintf("%+v %v", st, err)
	})
	checkStoredInOrder(t, st.Messages, cv.want())
	if r := st.Receipts[0]; r.MessageID != sent.MessageID {
		t.Fatalf("receipt %+v, want the read receipt of %s", r, sent.MessageID)
	}
	proctest.Eventually(t, "fakelaravel's stats to count the batch requests (legacy ones: none)", 10*time.Second, func() (bool, string) {
		stats := w.laravel.Stats().Endpoints
		batches := stats[fakelaravel.EndpointMessageBatch].Requests > 0 && stats[fakelaravel.EndpointReceiptBatch].Requests > 0
		if stats[fakelaravel.EndpointMessage].Requests != 0 || stats[fakelaravel.EndpointReceipt].Requests != 0 {
			t.Fatalf("legacy requests in batch mode: %d messages, %d receipts", stats[fakelaravel.EndpointMessage].Requests, stats[fakelaravel.EndpointReceipt].Requests)
		}
		return batches, fmt.Sprintf("message batch %d, receipt batch %d requests",
			stats[fakelaravel.EndpointMessageBatch].Requests, stats[fakelaravel.EndpointReceiptBatch].Requests)
	})
	for _, line := range metricLines(c.metrics(), "wagate_events_dropped_total{") {
		if strings.Contains(line, "not_delivered_in_mode") && !strings.HasSuffix(line, " 0") {
			t.Fatalf("batch mode dropped events it should deliver: %s", line)
		}
	}
	waitGatewayReceipts(t, w.wa, cv.ids()...)

	// Statuses keep flowing beside the messages.
	if err := w.wa.FailNextConnect(jid, 503); err != nil {
		t.Fatal(err)
	}
	if err := w.wa.Drop(jid); err != nil {
		t.Fatal(err)
	}
	waitLaravelStatus(t, ctx, w, "e2e_msg_batch", laravel.StatusDisconnected)
	waitLaravelStatus(t, ctx, w, "e2e_msg_batch", laravel.StatusConnected)

	// What the customer writes while the gateway is down arrives when it is back, after the rest.
	w.stopGateway()
	meanwhile := write(fakewa.PhoneMessage{Text: "¿siguen ahí?"})
	w.startGateway()
	proctest.Eventually(t, "Laravel to store the message written while the gateway was down", 30*time.Second, func() (bool, string) {
		var err error
		st, err = w.laravel.Messages(ctx, "e2e_msg_batch")
		return err == nil && len(st.Messages) == 4, fmt.Sprintf("%d messages, %v", len(st.Messages), err)
	})
	if last := st.Messages[3]; last.MessageID != meanwhile || last.Text != "¿siguen ahí?" || last.Deliveries != 1 ||
		last.Sequence <= st.Messages[2].Sequence {
		t.Fatalf("after the restart Laravel stored %+v, want %s once, numbered after everything before", last, meanwhile)
	}
	waitGatewayReceipts(t, w.wa, meanwhile)
}
