package processtest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"

	"wagate/fakelaravel"
	"wagate/gateway/laravel"
	"wagate/gateway/outbox"
	"wagate/internal/proctest"
	"wagate/simulator/fakewa"
)

// As TestMessagesReceiptedBeforeRedisRestartedLosingItsLastWritesWhileTheGatewayWasDownReachLaravel,
// but Laravel applied the gateway's first batch of the messages before the gateway's SIGKILL:
// Laravel holds every answer to messages past the gateway's timeout (applied, answer never
// received), so the batch stays in flight, unsettled, its journal rows kept, and the messages
// after it wait behind it. Redis's restart loses the outbox's entries and the batch records with
// them. The next start takes the restart for a loss and replays the journal: the batch the journal
// noted before its first send goes out again as it was, under its key, and Laravel answers it from
// its stored answer; the messages after it follow in batches of their own. Every message is
// stored once, each chat in order. Before the journal noted batches, the replay put the applied
// messages in a new batch under a new key and Laravel applied them a second time (chaos fault kind
// redis-restart-while-gateway-down: 2-3 messages delivered twice in 5 of 8 schedules).
func TestMessagesLaravelAppliedBeforeRedisRestartedLosingTheBatchRecordsAreAppliedOnce(t *testing.T) {
	h := startHarness(t, "gw-redis-restart-applied", "WAGATE_MESSAGE_INTERVAL=200ms")
	ctx := context.Background()
	rdb, kept := lastWritesLostFromNow(t, h)
	// Laravel applies every batch of messages and answers after the gateway gave up waiting
	// (WAGATE_LARAVEL_TIMEOUT=2s): applied, never acknowledged.
	if err := h.admin.SetFaults(ctx, fakelaravel.Faults{Windows: []fakelaravel.FaultWindow{
		{Kind: fakelaravel.FaultLatency, LatencyMS: 5000, Rate: 1, Endpoints: []string{laravel.EndpointMsgBatch}},
	}}); err != nil {
		t.Fatal(err)
	}
	const session = "restart_applied"
	customers := []string{"5511977775001", "5511977775002"}
	jid := pairConnected(t, h, session, "15558880500")
	written := map[string][]string{}
	sendReceipted(t, h, jid, customers, 0, 3, written)
	var applied int
	proctest.Eventually(t, "Laravel to apply the first batch of messages", 30*time.Second, func() (bool, string) {
		st, err := laravelMessages(t, h.laravelURL(), session)
		applied = len(st.Messages)
		return err == nil && applied > 0, fmt.Sprintf("%d stored, %v", applied, err)
	})
	// More messages, taken while the batch is in flight: they wait behind it.
	sendReceipted(t, h, jid, customers, 3, 2, written)
	h.gw.Kill()
	restartRedisLosingLastWrites(t, h, rdb, kept)
	if n, err := rdb.HLen(ctx, outbox.DefaultStream+":batches").Result(); err != nil || n != 0 {
		t.Fatalf("batch records after the restart: %d, %v; want the record of the batch in flight lost", n, err)
	}
	t.Logf("%d messages applied by Laravel, unacknowledged, 4 more waiting behind them; gateway SIGKILLed, redis-server restarted from its AOF without the last writes", applied)
	if err := h.admin.SetFaults(ctx, fakelaravel.Faults{}); err != nil {
		t.Fatal(err)
	}
	h.startGateway()
	checkEveryMessageOnceInOrder(t, h, session, written)
}

// sendReceipted has each customer write n messages (numbered from first) to the device jid, adds
// their ids to written (by customer), and waits until the device receipted every one of them (the
// gateway took them: WhatsApp never delivers them again).
func sendReceipted(t *testing.T, h *harness, jid types.JID, customers []string, first, n int, written map[string][]string) {
	t.Helper()
	ctx := context.Background()
	since := uint64(0)
	if evs, err := h.phones.Events(ctx, 0); err == nil && len(evs) > 0 {
		since = evs[len(evs)-1].Seq
	}
	var all []string
	for i := first; i < first+n; i++ {
		for _, from := range customers {
			id, err := h.phones.SendMessage(ctx, jid, fakewa.PhoneMessage{From: from, Text: fmt.Sprintf("%s #%d", from, i)})
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
		evs, err := h.phones.Events(ctx, since)
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
}
