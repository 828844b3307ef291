package processtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"wagate/gateway/outbox"
	"wagate/internal/proctest"
	"wagate/simulator/fakewa"
)

// As TestMessagesLaravelAppliedBeforeRedisRestartedLosingTheBatchRecordsAreAppliedOnce, but the
// gateway also settled the batches before its SIGKILL, in the writes Redis then loses: customers'
// messages are appended and read (durable), Redis's AOF is turned off, and only then does the
// gateway flush them (WAGATE_MESSAGE_INTERVAL=5s), Laravel apply them, and the gateway acknowledge
// and delete their entries, remove the batches' records and mark their journal rows settled.
// Redis's restart brings every entry back, pending for the dead gateway, without a record, and a
// customer writes once more while no gateway runs (WhatsApp delivers it at the reconnect). The
// next start takes the entries over; the journal says Laravel applied every one, so each is
// acknowledged away and none is sent again: every message stored once, each chat in order.
// Before the journal kept settled rows (their rows were deleted at settlement, so nothing
// remembered them), the start batched them anew, with the new message: another composition, so
// a new key, and Laravel applied each a second time (chaos fault kind
// redis-restart-while-gateway-down, seed 1 schedules 20, 62, 75, 170, 189 at 2a41874).
func TestMessagesLaravelAppliedAndTheGatewaySettledInTheWritesARedisRestartLosesAreAppliedOnce(t *testing.T) {
	h := startHarness(t, "gw-redis-restart-settled", "WAGATE_MESSAGE_INTERVAL=5s")
	ctx := context.Background()
	const session = "restart_settled"
	customers := []string{"5511977776001", "5511977776002"}
	jid := pairConnected(t, h, session, "15558880600")
	written := map[string][]string{}
	sendReceipted(t, h, jid, customers, 0, 4, written)
	time.Sleep(500 * time.Millisecond) // read by the flusher (every 100 ms), waiting for their batch
	rdb, kept := lastWritesLostFromNow(t, h)
	n, err := rdb.XLen(ctx, outbox.DefaultStream).Result()
	if err != nil || n < 8 {
		t.Fatalf("the outbox holds %d entries (%v) when the AOF stops; want the 8 messages waiting", n, err)
	}
	total := 8
	proctest.Eventually(t, "Laravel to apply the messages and the gateway to settle them", 30*time.Second, func() (bool, string) {
		st, err := laravelMessages(t, h.laravelURL(), session)
		left, lerr := rdb.XLen(ctx, outbox.DefaultStream).Result()
		return err == nil && lerr == nil && len(st.Messages) == total && left == 0,
			fmt.Sprintf("%d stored (%v), %d entries left (%v)", len(st.Messages), err, left, lerr)
	})
	time.Sleep(200 * time.Millisecond) // the journal marks the rows settled right after the 2xx
	h.gw.Kill()
	late, err := h.phones.SendMessage(ctx, jid, fakewa.PhoneMessage{From: customers[0], Text: customers[0] + " while no gateway runs"})
	if err != nil {
		t.Fatal(err)
	}
	written[customers[0]] = append(written[customers[0]], late)
	if err := h.redis.Restart(); err != nil {
		t.Fatal(err)
	}
	if got, err := rdb.Get(ctx, outbox.DefaultStream+":generation").Result(); err != nil || got != kept {
		t.Fatalf("marker after the restart %q, %v; want %q kept by the AOF", got, err, kept)
	}
	if back, err := rdb.XLen(ctx, outbox.DefaultStream).Result(); err != nil || back != n {
		t.Fatalf("the outbox holds %d entries after the restart (%v); want the %d settled ones back", back, err, n)
	}
	t.Logf("%d messages applied by Laravel and settled by the gateway in the writes Redis lost; gateway SIGKILLed, redis-server restarted from its AOF with their entries", total)
	h.startGateway()
	checkEveryMessageOnceInOrder(t, h, session, written)
	proctest.Eventually(t, "the entries brought back to leave the outbox", 30*time.Second, func() (bool, string) {
		left, err := rdb.XLen(ctx, outbox.DefaultStream).Result()
		return err == nil && left == 0, fmt.Sprintf("%d entries left (%v)", left, err)
	})
}
