package processtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"wagate/fakelaravel"
	"wagate/internal/proctest"
	"wagate/simulator/fakewa"
)

// Customers write a burst of messages to a session; the gateway (batch mode, real Redis with AOF)
// is SIGKILLed right after fakewa logs the device's delivery receipt of one of them, while the
// burst goes on. whatsmeow sends that receipt only once the gateway appended the message to the
// outbox, and WhatsApp keeps every message not receipted, so after a restart Laravel stores every
// message exactly once, each chat in the order the customer wrote it. Then Redis pauses writes:
// nothing written meanwhile is acknowledged, and a second SIGKILL during the pause loses nothing.
func TestMessagesReceiptedBeforeASIGKILLAndThoseWrittenDuringItAllReachLaravelOnceInOrder(t *testing.T) {
	const (
		session  = "kill_msgs"
		perChat  = 30
		killedAt = 12 // the gateway dies right after the device receipted this many messages
	)
	customers := []string{"5511977771001", "5511977771002"}
	h := startHarness(t, "gw-kill-msgs", "WAGATE_MESSAGE_INTERVAL=200ms")
	ctx, c, phones := context.Background(), h.c, h.phones
	jid := h.pair(ctx, session, "15558880100")
	proctest.Eventually(t, "the session connected", 30*time.Second, func() (bool, string) {
		s := c.sessions()[session]
		return s.Connected, fmt.Sprintf("%+v", s)
	})
	since := uint64(0)
	if evs, err := phones.Events(ctx, 0); err == nil && len(evs) > 0 {
		since = evs[len(evs)-1].Seq
	}

	// The burst: both customers write in turns; what each wrote, in order, is the ground truth.
	written := map[string][]string{}
	var mu sync.Mutex
	burstDone := make(chan error, 1)
	go func() {
		for i := range perChat {
			for _, from := range customers {
				id, err := phones.SendMessage(ctx, jid, fakewa.PhoneMessage{From: from, Text: fmt.Sprintf("%s #%d", from, i)})
				if err != nil {
					burstDone <- fmt.Errorf("message %d of %s: %w", i, from, err)
					return
				}
				mu.Lock()
				written[from] = append(written[from], id)
				mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		}
		burstDone <- nil
	}()

	// SIGKILL right after the device receipted killedAt messages.
	receipted := map[string]bool{}
	proctest.Eventually(t, fmt.Sprintf("the device to receipt %d messages", killedAt), 60*time.Second, func() (bool, string) {
		evs, err := phones.Events(ctx, since)
		if err != nil {
			return false, err.Error()
		}
		for _, e := range evs {
			since = e.Seq
			if e.Kind == fakewa.EventDeviceReceipt && e.Detail != "retry" && e.From != "" {
				receipted[e.MessageID] = true
			}
		}
		return len(receipted) >= killedAt, fmt.Sprintf("%d receipted", len(receipted))
	})
	h.gw.Kill()
	t.Logf("gateway SIGKILLed after %d device receipts", len(receipted))

	if err := <-burstDone; err != nil {
		t.Fatal(err)
	}
	h.startGateway()

	var st fakelaravel.MessagesState
	total := perChat * len(customers)
	proctest.Eventually(t, fmt.Sprintf("Laravel to store all %d messages", total), 90*time.Second, func() (bool, string) {
		var err error
		st, err = laravelMessages(t, h.laravelURL(), session)
		return err == nil && len(st.Messages) >= total, fmt.Sprintf("%d stored, %v", len(st.Messages), err)
	})

	stored := map[string]int{}
	byChat := map[string][]string{}
	var lastSeq = map[string]int64{}
	redelivered := 0
	for _, m := range st.Messages {
		stored[m.MessageID]++
		if m.Deliveries > 1 {
			redelivered++ // appended, then killed before the receipt: sent again, stored once
		}
		byChat[m.Chat] = append(byChat[m.Chat], m.MessageID)
		if m.Sequence <= lastSeq[m.Chat] {
			t.Errorf("chat %s: message %s has sequence %d after %d", m.Chat, m.MessageID, m.Sequence, lastSeq[m.Chat])
		}
		lastSeq[m.Chat] = m.Sequence
	}
	for id := range receipted {
		if stored[id] != 1 {
			t.Errorf("message %s was receipted to WhatsApp before the SIGKILL but is stored %d times", id, stored[id])
		}
	}
	for _, from := range customers {
		chat := from + "@s.whatsapp.net"
		if got := byChat[chat]; !slices.Equal(got, written[from]) {
			t.Errorf("chat %s in Laravel:\n got %q\nwant %q (as written, each once)", chat, got, written[from])
		}
	}
	if len(st.Messages) != total {
		t.Errorf("Laravel stores %d messages, want %d", len(st.Messages), total)
	}
	t.Logf("%d messages stored once each; %d of them reached Laravel twice (appended, killed before the receipt)", total, redelivered)

	// Redis stops taking writes (CLIENT PAUSE WRITE, 4 s): the gateway's appends wait, so it must
	// not acknowledge what customers write meanwhile. It is SIGKILLed during the pause; after the
	// restart Laravel stores those messages too, once each, after the rest of their chat.
	rdb := redis.NewClient(&redis.Options{Addr: h.redis.Addr})
	defer rdb.Close()
	proctest.Eventually(t, "the restarted gateway to be connected", 30*time.Second, func() (bool, string) {
		s := c.sessions()[session]
		return s.Connected, fmt.Sprintf("%+v", s)
	})
	if evs, err := phones.Events(ctx, since); err == nil && len(evs) > 0 {
		since = evs[len(evs)-1].Seq
	}
	if err := rdb.Do(ctx, "CLIENT", "PAUSE", "4000", "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	var paused []string
	for i := range 3 {
		for _, from := range customers {
			id, err := phones.SendMessage(ctx, jid, fakewa.PhoneMessage{From: from, Text: fmt.Sprintf("%s paused #%d", from, i)})
			if err != nil {
				t.Fatal(err)
			}
			written[from] = append(written[from], id)
			paused = append(paused, id)
		}
	}
	time.Sleep(1500 * time.Millisecond)
	evs, err := phones.Events(ctx, since)
	if err != nil {
		t.Fatal(err)
	}
	delivered := 0
	for _, e := range evs {
		switch {
		case e.Kind == fakewa.EventPhoneMessageDelivered && slices.Contains(paused, e.MessageID):
			delivered++
		case e.Kind == fakewa.EventDeviceReceipt && slices.Contains(paused, e.MessageID) && e.Detail != "retry":
			t.Errorf("the gateway acknowledged %s to WhatsApp while Redis refused writes", e.MessageID)
		}
	}
	if delivered == 0 {
		t.Error("fakewa delivered none of the messages written during the pause: the phase proves nothing")
	}
	h.killGateway()
	total += len(paused)
	proctest.Eventually(t, fmt.Sprintf("Laravel to store all %d messages", total), 90*time.Second, func() (bool, string) {
		var err error
		st, err = laravelMessages(t, h.laravelURL(), session)
		return err == nil && len(st.Messages) >= total, fmt.Sprintf("%d stored, %v", len(st.Messages), err)
	})
	byChat = map[string][]string{}
	for _, m := range st.Messages {
		byChat[m.Chat] = append(byChat[m.Chat], m.MessageID)
	}
	for _, from := range customers {
		chat := from + "@s.whatsapp.net"
		if got := byChat[chat]; !slices.Equal(got, written[from]) {
			t.Errorf("chat %s in Laravel after the kill during the pause:\n got %q\nwant %q", chat, got, written[from])
		}
	}
	if t.Failed() || os.Getenv("WAGATE_TEST_LOG") != "" {
		t.Logf("gateway-1 log:\n%s\ngateway-2 log:\n%s", proctest.Tail(filepath.Join(h.dir, "gateway-1.log")), h.gw.Tail())
	}
}
