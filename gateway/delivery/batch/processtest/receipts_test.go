package processtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.mau.fi/whatsmeow/types"

	"wagate/fakelaravel"
	"wagate/gateway/laravel"
	"wagate/internal/proctest"
	"wagate/simulator/fakewa"
)

// The receipts of sent messages take the path of customers' messages: the gateway's handler
// appends each one to the outbox before whatsmeow acks it to WhatsApp (SynchronousAck), and
// WhatsApp (fakewa) keeps a receipt the device did not ack and delivers it again at its next
// login. These tests refuse and kill the gateway while receipts arrive and check that every sent
// message ends read in Laravel, in one row, and that fakewa holds no receipt at the end.

// receiptRecipient is the customer the gateway's messages go to.
const receiptRecipient = "5511977772001"

// sendMessages has the gateway send n texts from session to receiptRecipient and returns their
// ids. A send is retried until Laravel has the session active (the gateway asks it first).
func sendMessages(t *testing.T, c gatewayClient, session string, n int, spacing time.Duration) []string {
	t.Helper()
	var ids []string
	for i := range n {
		var out struct {
			MessageID string `json:"message_id"`
		}
		body := map[string]string{"to": "+" + receiptRecipient, "text": fmt.Sprintf("pedido %d salió", i)}
		proctest.Eventually(t, fmt.Sprintf("the gateway to send message %d", i), 30*time.Second, func() (bool, string) {
			code := c.call("POST", "/sessions/"+session+"/messages", body, &out)
			return code == 200 && out.MessageID != "", fmt.Sprint(code)
		})
		ids = append(ids, out.MessageID)
		time.Sleep(spacing)
	}
	return ids
}

// receiptLedger is what fakewa's event log says of the receipts for the messages ids: the
// deliveries of each receipt (message id and type) and whether the device acked it.
type receiptLedger struct {
	sent, acked map[string]int
	held        int
	redelivered int
}

func readReceiptLedger(t *testing.T, phones *fakewa.ControlClient, jid types.JID, ids []string) receiptLedger {
	t.Helper()
	evs, err := phones.Events(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	l := receiptLedger{sent: map[string]int{}, acked: map[string]int{}}
	for _, e := range evs {
		if e.JID != jid.String() || !slices.Contains(ids, e.MessageID) {
			continue
		}
		k := e.MessageID + "/" + e.Detail
		switch e.Kind {
		case fakewa.EventReceiptSent:
			l.sent[k]++
			if e.Attempt > 1 {
				l.redelivered++
			}
		case fakewa.EventReceiptHeld:
			l.held++
		case fakewa.EventReceiptAcked:
			l.acked[k]++
		}
	}
	return l
}

// checkEveryMessageRead waits until Laravel holds a read receipt row for each of ids, then fails
// t unless it holds exactly one row per message (one recipient), and fakewa has every receipt
// (delivery and read of each message) acked by the device once.
func checkEveryMessageRead(t *testing.T, h *harness, session string, jid types.JID, ids []string) fakelaravel.MessagesState {
	t.Helper()
	var st fakelaravel.MessagesState
	proctest.Eventually(t, fmt.Sprintf("Laravel to hold all %d messages read", len(ids)), 90*time.Second, func() (bool, string) {
		var err error
		st, err = laravelMessages(t, h.laravelURL(), session)
		read := 0
		for _, r := range st.Receipts {
			if slices.Contains(ids, r.MessageID) && r.Status == laravel.ReceiptRead {
				read++
			}
		}
		return err == nil && read >= len(ids), fmt.Sprintf("%d read, %v", read, err)
	})
	rows := map[string]int{}
	for _, r := range st.Receipts {
		rows[r.MessageID]++
		if r.Sender != receiptRecipient+"@s.whatsapp.net" {
			t.Errorf("receipt of %s from %s, want %s", r.MessageID, r.Sender, receiptRecipient)
		}
	}
	for _, id := range ids {
		if rows[id] != 1 {
			t.Errorf("message %s has %d receipt rows in Laravel, want 1", id, rows[id])
		}
	}
	proctest.Eventually(t, "fakewa to hold no receipt the device did not ack", 30*time.Second, func() (bool, string) {
		l := readReceiptLedger(t, h.phones, jid, ids)
		for _, id := range ids {
			for _, typ := range []string{"delivery", "read"} {
				if k := id + "/" + typ; l.acked[k] != 1 {
					return false, fmt.Sprintf("%s acked %d times (sent %d)", k, l.acked[k], l.sent[k])
				}
			}
		}
		return true, ""
	})
	return st
}

// receiptItems is how many receipt items Laravel applied (replays of a batch not counted).
func receiptItems(t *testing.T, h *harness) int64 {
	t.Helper()
	st, err := h.admin.GetStats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.Endpoints[fakelaravel.EndpointReceiptBatch].Items
}

// pairForReceipts pairs session, waits until it is connected and has the recipients of its
// messages send the delivery receipt at once and the read receipt readAfter later.
func pairForReceipts(t *testing.T, h *harness, session, phone string, readAfter time.Duration) types.JID {
	t.Helper()
	ctx := context.Background()
	jid := h.pair(ctx, session, phone)
	proctest.Eventually(t, "the session connected", 30*time.Second, func() (bool, string) {
		s := h.c.sessions()[session]
		return s.Connected, fmt.Sprintf("%+v", s)
	})
	if err := h.phones.SetReceiptSchedule(ctx, jid, &fakewa.ReceiptSchedule{DeliveredAfter: 0, ReadAfter: readAfter}); err != nil {
		t.Fatal(err)
	}
	return jid
}

// Read receipts arrive while Redis refuses writes past the append deadline (CLIENT PAUSE WRITE,
// 8 s; the deadline is 5 s): the outbox refuses them, so the gateway does not ack them, drops the
// connection and reconnects, and fakewa delivers them again at that login. Every message ends
// read in Laravel, each receipt applied once.
func TestReceiptsTheOutboxRefusedComeBackAndReachLaravelOnce(t *testing.T) {
	const (
		session = "refused_receipts"
		n       = 6
	)
	h := startHarness(t, "gw-refused-receipts", "WAGATE_MESSAGE_INTERVAL=200ms")
	jid := pairForReceipts(t, h, session, "15558880200", 2*time.Second)
	ids := sendMessages(t, h.c, session, n, 20*time.Millisecond)
	proctest.Eventually(t, "the device to ack every delivery receipt", 30*time.Second, func() (bool, string) {
		l := readReceiptLedger(t, h.phones, jid, ids)
		acked := 0
		for _, id := range ids {
			acked += l.acked[id+"/delivery"]
		}
		return acked == n, fmt.Sprintf("%d acked", acked)
	})

	rdb := redis.NewClient(&redis.Options{Addr: h.redis.Addr})
	defer rdb.Close()
	if err := rdb.Do(context.Background(), "CLIENT", "PAUSE", "8000", "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	// The read receipts come during the pause; none may be acked while Redis refuses writes.
	time.Sleep(6 * time.Second)
	l := readReceiptLedger(t, h.phones, jid, ids)
	for _, id := range ids {
		if l.acked[id+"/read"] != 0 {
			t.Errorf("the gateway acked the read receipt of %s while Redis refused writes", id)
		}
		if l.sent[id+"/read"] == 0 {
			t.Errorf("fakewa sent no read receipt of %s during the pause: the phase proves nothing", id)
		}
	}

	checkEveryMessageRead(t, h, session, jid, ids)
	l = readReceiptLedger(t, h.phones, jid, ids)
	if l.redelivered == 0 {
		t.Error("fakewa delivered no receipt again: the gateway's refusal was not exercised")
	}
	if items := receiptItems(t, h); items != 2*n {
		t.Errorf("Laravel applied %d receipt items, want %d: each delivery and read receipt once", items, 2*n)
	}
	t.Logf("%d receipts delivered again after the refusal (%d held while the session reconnected)", l.redelivered, l.held)
	if t.Failed() || os.Getenv("WAGATE_TEST_LOG") != "" {
		t.Logf("gateway log:\n%s", h.gw.Tail())
	}
}

// The gateway sends a burst of messages whose receipts stream back. Once the device acked every
// delivery receipt, Redis pauses writes (CLIENT PAUSE WRITE, 4 s), so the read receipts that come
// meanwhile wait in the gateway's handler for their append, unacked, and the gateway is SIGKILLed
// with half of them in flight. Those, and the ones sent while it was down, come again at the
// restarted gateway's login: every message ends read in Laravel, in one row, and fakewa holds no
// receipt unacked.
func TestReceiptsInFlightAtASIGKILLReachLaravelOnce(t *testing.T) {
	const (
		session = "kill_receipts"
		n       = 20
	)
	h := startHarness(t, "gw-kill-receipts", "WAGATE_MESSAGE_INTERVAL=200ms")
	jid := pairForReceipts(t, h, session, "15558880201", 2*time.Second)
	ids := sendMessages(t, h.c, session, n, 50*time.Millisecond)
	proctest.Eventually(t, "the device to ack every delivery receipt", 30*time.Second, func() (bool, string) {
		l := readReceiptLedger(t, h.phones, jid, ids)
		acked := 0
		for _, id := range ids {
			acked += l.acked[id+"/delivery"]
		}
		return acked == n, fmt.Sprintf("%d acked", acked)
	})

	rdb := redis.NewClient(&redis.Options{Addr: h.redis.Addr})
	defer rdb.Close()
	if err := rdb.Do(context.Background(), "CLIENT", "PAUSE", "4000", "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	// The read receipts acked before the pause took effect are not in flight.
	before := readReceiptLedger(t, h.phones, jid, ids)
	var inFlight []string
	proctest.Eventually(t, fmt.Sprintf("fakewa to send %d read receipts during the pause", n/2), 30*time.Second, func() (bool, string) {
		l := readReceiptLedger(t, h.phones, jid, ids)
		inFlight = inFlight[:0]
		for _, id := range ids {
			k := id + "/read"
			if before.acked[k] > 0 {
				continue
			}
			if l.acked[k] > 0 {
				t.Fatalf("the gateway acked the read receipt of %s while Redis refused writes", id)
			}
			if l.sent[k] > 0 {
				inFlight = append(inFlight, id)
			}
		}
		return len(inFlight) >= n/2, fmt.Sprintf("%d sent", len(inFlight))
	})
	h.gw.Kill()
	t.Logf("gateway SIGKILLed with the read receipts of %d messages sent to it and not acked", len(inFlight))
	time.Sleep(500 * time.Millisecond) // the rest of the read receipts come while it is down
	h.startGateway()

	checkEveryMessageRead(t, h, session, jid, ids)
	l := readReceiptLedger(t, h.phones, jid, ids)
	for _, id := range inFlight {
		if l.sent[id+"/read"] < 2 {
			t.Errorf("the read receipt of %s, in flight at the SIGKILL, was sent %d times, want again after the restart", id, l.sent[id+"/read"])
		}
	}
	items := receiptItems(t, h)
	if items < 2*n {
		t.Errorf("Laravel applied %d receipt items, want at least %d", items, 2*n)
	}
	t.Logf("%d receipts held while the gateway was down, %d delivered again; Laravel applied %d receipt items for %d receipts (more would be a batch in flight at the kill sent again in another batch, stored once)",
		l.held, l.redelivered, items, 2*n)
	if t.Failed() || os.Getenv("WAGATE_TEST_LOG") != "" {
		t.Logf("gateway-1 log:\n%s\ngateway-2 log:\n%s", proctest.Tail(filepath.Join(h.dir, "gateway-1.log")), h.gw.Tail())
	}
}
