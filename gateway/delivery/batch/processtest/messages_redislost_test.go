package processtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"wagate/fakelaravel"
	"wagate/internal/proctest"
	"wagate/internal/redistest"
	"wagate/simulator/fakewa"
)

// Customers write messages while Laravel is down; the gateway (batch mode) appends each to the
// Redis outbox and receipts it to WhatsApp, which therefore never delivers it again. Then Redis,
// run WITHOUT persistence, is SIGKILLed and comes back empty: the outbox and every undelivered
// message in it are gone. The message journal in the gateway's SQL store still holds them: the
// gateway notices the loss, appends them again, and once Laravel is back it stores every message
// exactly once, each chat in the order the customer wrote it. Without the journal those the
// delivery had not read from the outbox yet are lost (7 of 24 with a gateway built before it).
func TestMessagesReceiptedBeforeRedisLostItsDataAllReachLaravelOnceInOrder(t *testing.T) {
	h := startHarnessOn(t, redistest.Options{AppendOnly: false}, "gw-redis-lost", "WAGATE_MESSAGE_INTERVAL=200ms")
	h.laravel.Kill() // its SQLite file stays; it comes back on the same address
	written := writeReceiptedMessages(t, h, "lost_msgs", "15558880200", []string{"5511977772001", "5511977772002"}, 12)

	// Redis loses its data under the running gateway: SIGKILLed without persistence, started
	// again empty.
	if err := h.redis.Restart(); err != nil {
		t.Fatal(err)
	}
	t.Log("redis-server SIGKILLed and restarted empty")
	time.Sleep(3 * time.Second) // the gateway checks its marker every second
	h.startLaravel()
	checkEveryMessageOnceInOrder(t, h, "lost_msgs", written)
}

// The same loss while the gateway is down: SIGKILLed with the messages only in the outbox (and the
// journal), Redis loses its data, the gateway starts on the empty Redis. The start sees a Redis
// generation it did not record and appends the journal again.
func TestMessagesReceiptedBeforeRedisLostItsDataWhileTheGatewayWasDownReachLaravel(t *testing.T) {
	h := startHarnessOn(t, redistest.Options{AppendOnly: false}, "gw-redis-lost-down", "WAGATE_MESSAGE_INTERVAL=200ms")
	h.laravel.Kill()
	written := writeReceiptedMessages(t, h, "lost_down", "15558880300", []string{"5511977773001", "5511977773002"}, 8)
	h.gw.Kill()
	if err := h.redis.Restart(); err != nil {
		t.Fatal(err)
	}
	t.Log("gateway SIGKILLed, redis-server SIGKILLed and restarted empty")
	h.startGateway()
	h.startLaravel()
	checkEveryMessageOnceInOrder(t, h, "lost_down", written)
}

// writeReceiptedMessages pairs session with a phone, has each customer write perChat messages to
// it in turns and waits until the device receipted every one (the gateway took it: WhatsApp will
// not deliver it again). It returns what each customer wrote, in order.
func writeReceiptedMessages(t *testing.T, h *harness, session, phone string, customers []string, perChat int) map[string][]string {
	t.Helper()
	ctx, c, phones := context.Background(), h.c, h.phones
	jid := h.pair(ctx, session, phone)
	proctest.Eventually(t, "the session connected", 30*time.Second, func() (bool, string) {
		s := c.sessions()[session]
		return s.Connected, fmt.Sprintf("%+v", s)
	})
	since := uint64(0)
	if evs, err := phones.Events(ctx, 0); err == nil && len(evs) > 0 {
		since = evs[len(evs)-1].Seq
	}
	written := map[string][]string{}
	var all []string
	for i := range perChat {
		for _, from := range customers {
			id, err := phones.SendMessage(ctx, jid, fakewa.PhoneMessage{From: from, Text: fmt.Sprintf("%s #%d", from, i)})
			if err != nil {
				t.Fatalf("message %d of %s: %v", i, from, err)
			}
			written[from] = append(written[from], id)
			all = append(all, id)
			time.Sleep(5 * time.Millisecond)
		}
	}
	receipted := map[string]bool{}
	proctest.Eventually(t, fmt.Sprintf("the device to receipt all %d messages", len(all)), 60*time.Second, func() (bool, string) {
		evs, err := phones.Events(ctx, since)
		if err != nil {
			return false, err.Error()
		}
		for _, e := range evs {
			since = e.Seq
			if e.Kind == fakewa.EventDeviceReceipt && e.Detail != "retry" && slices.Contains(all, e.MessageID) {
				receipted[e.MessageID] = true
			}
		}
		return len(receipted) == len(all), fmt.Sprintf("%d receipted", len(receipted))
	})
	return written
}

// checkEveryMessageOnceInOrder waits until Laravel stores every message written, then checks that
// each reached it once and each chat holds them in the order written.
func checkEveryMessageOnceInOrder(t *testing.T, h *harness, session string, written map[string][]string) {
	t.Helper()
	total := 0
	for _, ids := range written {
		total += len(ids)
	}
	var st fakelaravel.MessagesState
	proctest.Eventually(t, fmt.Sprintf("Laravel to store all %d messages", total), 120*time.Second, func() (bool, string) {
		var err error
		st, err = laravelMessages(t, h.laravelURL(), session)
		return err == nil && len(st.Messages) >= total, fmt.Sprintf("%d stored, %v", len(st.Messages), err)
	})
	time.Sleep(2 * time.Second) // a duplicate would arrive within a flush or two
	st, err := laravelMessages(t, h.laravelURL(), session)
	if err != nil {
		t.Fatal(err)
	}
	byChat := map[string][]string{}
	for _, m := range st.Messages {
		if m.Deliveries != 1 {
			t.Errorf("message %s reached Laravel %d times, want once", m.MessageID, m.Deliveries)
		}
		byChat[m.Chat] = append(byChat[m.Chat], m.MessageID)
	}
	for from, ids := range written {
		chat := from + "@s.whatsapp.net"
		if got := byChat[chat]; !slices.Equal(got, ids) {
			t.Errorf("chat %s in Laravel:\n got %q\nwant %q (as written, each once, in order)", chat, got, ids)
		}
	}
	if t.Failed() || os.Getenv("WAGATE_TEST_LOG") != "" {
		t.Logf("gateway log:\n%s", proctest.Tail(filepath.Join(h.dir, fmt.Sprintf("gateway-%d.log", h.gwRuns))))
	}
}
