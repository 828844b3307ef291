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
	"wagate/gateway/outbox"
	"wagate/internal/proctest"
	"wagate/internal/redistest"
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
	jid := pairConnected(t, h, session, phone)
	written := map[string][]string{}
	sendReceipted(t, h, jid, customers, 0, perChat, written)
	return written
}

// pairConnected pairs session with the phone and waits until the gateway says it is connected.
func pairConnected(t *testing.T, h *harness, session, phone string) types.JID {
	t.Helper()
	jid := h.pair(context.Background(), session, phone)
	proctest.Eventually(t, "the session connected", 30*time.Second, func() (bool, string) {
		s := h.c.sessions()[session]
		return s.Connected, fmt.Sprintf("%+v", s)
	})
	return jid
}

// lastWritesLostFromNow turns redis-server's AOF off, so every write from now on is lost at its
// next restart while what came before is kept, and returns a client and the outbox marker kept.
func lastWritesLostFromNow(t *testing.T, h *harness) (rdb *redis.Client, marker string) {
	t.Helper()
	ctx := context.Background()
	rdb = redis.NewClient(&redis.Options{Addr: h.redis.Addr, Protocol: 2})
	t.Cleanup(func() { rdb.Close() })
	marker, err := rdb.Get(ctx, outbox.DefaultStream+":generation").Result()
	if err != nil {
		t.Fatalf("the gateway's marker: %v", err)
	}
	if err := rdb.ConfigSet(ctx, "appendonly", "no").Err(); err != nil {
		t.Fatal(err)
	}
	return rdb, marker
}

// restartRedisLosingLastWrites restarts redis-server from its AOF and checks the restart kept the
// marker and lost the outbox's entries written since lastWritesLostFromNow.
func restartRedisLosingLastWrites(t *testing.T, h *harness, rdb *redis.Client, marker string) {
	t.Helper()
	ctx := context.Background()
	if err := h.redis.Restart(); err != nil {
		t.Fatal(err)
	}
	if got, err := rdb.Get(ctx, outbox.DefaultStream+":generation").Result(); err != nil || got != marker {
		t.Fatalf("marker after the restart %q, %v; want %q kept by the AOF", got, err, marker)
	}
	if n, err := rdb.XLen(ctx, outbox.DefaultStream).Result(); err != nil || n != 0 {
		t.Fatalf("outbox after the restart: %d entries, %v; want the messages' entries lost", n, err)
	}
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
