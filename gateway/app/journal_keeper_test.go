package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"wagate/gateway/event"
	"wagate/gateway/laravel"
	"wagate/gateway/metrics"
	"wagate/gateway/storage"
)

// keeperRig is a journal keeper on a real SQLite store whose append path records what it is
// handed and refuses the first refuse calls (Redis down again).
type keeperRig struct {
	k *journalKeeper

	mu       sync.Mutex
	appended []string
	refuse   int
	done     chan struct{}
}

func newKeeperRig(t *testing.T, held []event.Event, refuse int) *keeperRig {
	t.Helper()
	db, err := storage.Open(context.Background(), storage.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return newKeeperRigOn(t, db, held, refuse)
}

// newKeeperRigOn is newKeeperRig on db (keepers of replicas sharing one store).
func newKeeperRigOn(t *testing.T, db *storage.DB, held []event.Event, refuse int) *keeperRig {
	t.Helper()
	r := &keeperRig{k: newJournalKeeper(db, storage.DefaultJournalRetention, storage.DefaultJournalSettledRetention, slog.New(slog.DiscardHandler)), refuse: refuse, done: make(chan struct{})}
	r.k.held = func() []event.Event { return held }
	r.k.deliver = func(_ context.Context, ev event.Event) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.refuse > 0 {
			r.refuse--
			return errors.New("outbox: Redis unavailable")
		}
		r.appended = append(r.appended, ev.ID)
		return nil
	}
	t.Cleanup(r.k.stop)
	return r
}

func keeperMessage(session string, seq int64) event.Event {
	id := fmt.Sprintf("M-%s-%d", session, seq)
	return event.Event{ID: fmt.Sprintf("%s-message-%d", session, seq), SessionID: session, Kind: event.KindMessage, Payload: id,
		Time: time.Unix(1_800_000_000, 0), Version: seq,
		Message: &laravel.MessageItem{SessionID: session, MessageID: id, Chat: "5511977770001@s.whatsapp.net",
			Sender: "5511977770001@s.whatsapp.net", Type: laravel.MessageText, Text: "hola", Timestamp: time.Unix(1_800_000_000, 0), Sequence: seq}}
}

// After Redis lost its data, the keeper appends every unsettled journal row through the append
// path, each session in sequence order, leaving out what the delivery holds in memory and what
// was settled; a replay Redis refuses halfway is retried until it goes through, and the new
// generation is recorded (done) only then and once the rows the delivery held are settled.
func TestAReplayAppendsEveryUnsettledRowInOrderRetriesAndRecordsTheGenerationLast(t *testing.T) {
	a1, a2, a3, b1 := keeperMessage("a", 1), keeperMessage("a", 2), keeperMessage("a", 3), keeperMessage("b", 1)
	r := newKeeperRig(t, []event.Event{a2}, 1)
	ctx := context.Background()
	for _, ev := range []event.Event{b1, a3, a1, a2} {
		if err := r.k.journal.Record(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	settledB := keeperMessage("b", 1)
	settledB.ID = "b-message-99" // another event of the same item (a redelivery) settles it
	settledB.Version = 99
	r.k.settle(ctx, []event.Event{settledB})

	r.k.replayInBackground(nil, time.Time{}, func(context.Context) {
		r.mu.Lock()
		n := len(r.appended)
		r.mu.Unlock()
		if n != 2 {
			t.Errorf("the generation was recorded with %d rows appended, want it after both", n)
		}
		close(r.done)
	})
	// The generation waits for the row the delivery held (a2) to be settled: a crash before then
	// must find it replayed at the next start.
	for range 50 {
		r.mu.Lock()
		n := len(r.appended)
		r.mu.Unlock()
		if n == 2 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	select {
	case <-r.done:
		t.Fatal("the generation was recorded while the delivery still held an unsettled row")
	case <-time.After(1500 * time.Millisecond):
	}
	r.k.settle(ctx, []event.Event{a2})
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the generation was not recorded after the replay went through and the held row was settled")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if want := []string{a1.ID, a3.ID}; !slices.Equal(r.appended, want) {
		t.Fatalf("appended %v, want %v (a2 held by the delivery, b1 settled)", r.appended, want)
	}
}

// The delivery holding an item under another event id than its journal row's (WhatsApp
// redelivered it after the outbox refused the first event: the journal keeps the first row, the
// delivery the redelivery's event) holds that item: the replay leaves the row out, as it does an
// item held under the row's own event id, and the generation waits for the item's settlement.
// Matching by event id appended the row too, and Laravel got the message twice.
func TestAReplayLeavesOutAnItemTheDeliveryHoldsUnderAnotherEventID(t *testing.T) {
	a1, a2 := keeperMessage("a", 1), keeperMessage("a", 2)
	redelivered := keeperMessage("a", 1)
	redelivered.ID, redelivered.Version = "a-message-7", 7
	receipt := event.Event{ID: "a-receipt-3", SessionID: "a", Kind: event.KindReceipt, Payload: "M-out-1", Version: 3,
		Receipt: &laravel.ReceiptItem{SessionID: "a", MessageID: "M-out-1", Sender: "5511977770001@s.whatsapp.net", Status: laravel.ReceiptRead}}
	receiptAgain := receipt
	receiptAgain.ID, receiptAgain.Version = "a-receipt-8", 8
	otherStatus := receipt
	otherStatus.ID, otherStatus.Version = "a-receipt-4", 4
	otherStatus.Receipt = &laravel.ReceiptItem{SessionID: "a", MessageID: "M-out-1", Sender: "5511977770001@s.whatsapp.net", Status: laravel.ReceiptDelivered}
	r := newKeeperRig(t, []event.Event{redelivered, receiptAgain}, 0)
	ctx := context.Background()
	for _, ev := range []event.Event{a1, a2, receipt, otherStatus} {
		if err := r.k.journal.Record(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	n, left, err := r.k.replay(ctx, time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	appended := slices.Clone(r.appended)
	r.mu.Unlock()
	// The receipt of another status is another item: it is appended.
	if want := []string{a2.ID, otherStatus.ID}; n != 2 || !slices.Equal(appended, want) {
		t.Fatalf("appended %d rows %v, want %v (a1 and the read receipt are held by the delivery under new event ids)", n, appended, want)
	}
	var leftIDs []string
	for _, ev := range left {
		leftIDs = append(leftIDs, ev.ID)
	}
	slices.Sort(leftIDs)
	if want := []string{a1.ID, receipt.ID}; !slices.Equal(leftIDs, want) {
		t.Fatalf("left out %v, want the journal rows %v (the generation waits for their settlement)", leftIDs, want)
	}
	// The delivery settling its events settles the rows left out.
	r.k.settle(ctx, []event.Event{redelivered, receiptAgain})
	if held, err := r.k.journal.Holding(ctx, left); err != nil || held != 0 {
		t.Fatalf("the journal still holds %d of the rows left out after the delivery settled their items (err %v)", held, err)
	}
}

// A stop during a replay Redis keeps refusing ends it without recording the generation: the next
// start replays again.
func TestAStopEndsAReplayThatCannotGoThroughWithoutRecordingTheGeneration(t *testing.T) {
	r := newKeeperRig(t, nil, 1_000_000)
	if err := r.k.journal.Record(context.Background(), keeperMessage("a", 1)); err != nil {
		t.Fatal(err)
	}
	recorded := make(chan struct{}, 1)
	r.k.replayInBackground(nil, time.Time{}, func(context.Context) { recorded <- struct{}{} })
	time.Sleep(100 * time.Millisecond)
	stopped := make(chan struct{})
	go func() { r.k.stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("stop did not end the replay")
	}
	select {
	case <-recorded:
		t.Fatal("the generation was recorded although the replay never went through")
	default:
	}
}

// The keeper's metrics: the rows held and the oldest one's age come from its last count (not from
// the scrape), and a replay that failed once and then went through counts one failure, one replay
// and the rows it appended.
func TestTheKeepersMetricsCountTheRowsHeldAndTheReplays(t *testing.T) {
	r := newKeeperRig(t, nil, 1)
	ctx := context.Background()
	a1, a2 := keeperMessage("a", 1), keeperMessage("a", 2)
	for _, ev := range []event.Event{a1, a2} {
		if err := r.k.journal.Record(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if s := r.k.snapshot(); s.Rows != 0 || s.Recorded != 2 {
		t.Fatalf("before a count: %+v, want 0 rows (not counted yet) and 2 recorded", s)
	}
	r.k.count()
	if s := r.k.snapshot(); s.Rows != 2 || s.OldestRowAge <= 0 || s.OldestRowAge > time.Minute {
		t.Fatalf("after a count: %+v, want 2 rows, the oldest recorded just now", s)
	}
	r.k.replayInBackground(nil, time.Time{}, func(context.Context) { close(r.done) })
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the replay did not go through")
	}
	r.k.settle(ctx, []event.Event{a1, a2})
	r.k.count()
	want := metrics.JournalSnapshot{Recorded: 2, Settled: 2, Replayed: 2, Replays: 1, ReplayFailures: 1}
	if s := r.k.snapshot(); s != want {
		t.Fatalf("snapshot %+v, want %+v", s, want)
	}
}

// Cluster mode: a shard held by nobody when a running replica noticed Redis's data loss had its
// rows appended by no replica. A replica that noticed the loss and claims shards afterwards
// appends their rows recorded before the loss (not the later ones: those are in the new outbox);
// with no loss noticed, or once no row older than the loss is left, a claim appends nothing.
func TestAShardClaimedAfterALiveLossGetsItsRowsRecordedBeforeTheLossAppended(t *testing.T) {
	r := newKeeperRig(t, nil, 0)
	ctx := context.Background()
	a1, a2, b1 := keeperMessage("a", 1), keeperMessage("a", 2), keeperMessage("b", 1)
	for _, ev := range []event.Event{a1, b1} {
		if err := r.k.journal.Record(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	onlyA := func(id string) bool { return id == "a" }
	appended := func() []string {
		r.mu.Lock()
		defer r.mu.Unlock()
		return slices.Clone(r.appended)
	}
	r.k.replayClaimed(onlyA)
	time.Sleep(200 * time.Millisecond)
	if got := appended(); len(got) != 0 {
		t.Fatalf("a claim with no loss noticed appended %v", got)
	}
	time.Sleep(5 * time.Millisecond)
	r.k.noteLoss(time.Now())
	time.Sleep(5 * time.Millisecond)
	if err := r.k.journal.Record(ctx, a2); err != nil { // after the loss: in the new outbox
		t.Fatal(err)
	}
	r.k.replayClaimed(onlyA)
	deadline := time.Now().Add(10 * time.Second)
	for len(appended()) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	if got, want := appended(), []string{a1.ID}; !slices.Equal(got, want) {
		t.Fatalf("claiming a's shard after the loss appended %v, want %v (a's row recorded before the loss; b not claimed)", got, want)
	}
	// Once the rows older than the loss are settled, the keeper's count forgets the loss.
	r.k.settle(ctx, []event.Event{a1, b1})
	r.k.count()
	r.k.replayClaimed(func(string) bool { return true })
	time.Sleep(200 * time.Millisecond)
	if got := appended(); len(got) != 1 {
		t.Fatalf("a claim after every row older than the loss was settled appended %v, want nothing more", got[1:])
	}
}

// appendedSoon returns what r appended once something was (or 10 s passed) and a little more
// time for anything else to arrive.
func (r *keeperRig) appendedSoon() []string {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		n := len(r.appended)
		r.mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.appended)
}

// Cluster mode: a shard held by nobody when the running replicas noticed Redis's data loss, and
// claimed only by a replica started after it, gets its rows recorded before the loss appended by
// that replica: the loss is recorded in the shared store (noteLoss) and a starting replica takes
// it from there (loadLoss). Once no row older than the loss is left, a count forgets it in the
// store too, and a replica starting then appends nothing at its claims.
func TestAShardClaimedOnlyByAReplicaStartedAfterALiveLossGetsItsRowsRecordedBeforeTheLossAppended(t *testing.T) {
	db, err := storage.Open(context.Background(), storage.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	ctx := context.Background()
	a1, a2, b1 := keeperMessage("a", 1), keeperMessage("a", 2), keeperMessage("b", 1)
	for _, ev := range []event.Event{a1, b1} {
		if err := storage.NewJournal(db).Record(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	running := newKeeperRigOn(t, db, nil, 0)
	time.Sleep(5 * time.Millisecond)
	running.k.noteLoss(time.Now()) // it held shard b only: it replays b (not shown here)
	time.Sleep(5 * time.Millisecond)
	if err := running.k.journal.Record(ctx, a2); err != nil { // after the loss: in the new outbox
		t.Fatal(err)
	}

	started := newKeeperRigOn(t, db, nil, 0)
	if err := started.k.loadLoss(ctx); err != nil {
		t.Fatal(err)
	}
	started.k.replayClaimed(func(id string) bool { return id == "a" })
	if got, want := started.appendedSoon(), []string{a1.ID}; !slices.Equal(got, want) {
		t.Fatalf("a replica started after the loss claimed a's shard and appended %v, want %v (a's row recorded before the loss)", got, want)
	}

	running.k.settle(ctx, []event.Event{a1, b1})
	started.k.count()
	if at, err := started.k.journal.LastLoss(ctx); err != nil || !at.IsZero() {
		t.Fatalf("the store's loss after every older row settled: %v, %v; want it forgotten", at, err)
	}
	later := newKeeperRigOn(t, db, nil, 0)
	if err := later.k.loadLoss(ctx); err != nil {
		t.Fatal(err)
	}
	later.k.replayClaimed(func(string) bool { return true })
	time.Sleep(200 * time.Millisecond)
	later.mu.Lock()
	defer later.mu.Unlock()
	if len(later.appended) != 0 {
		t.Fatalf("a replica started once the loss was forgotten appended %v at its claim, want nothing", later.appended)
	}
}

// A replay reads its rows, then appends them one by one (each may wait for room in a full
// outbox); an item the delivery settled meanwhile was delivered and its entry acknowledged away:
// appending its row then sends it to Laravel a second time (chaos seed 2 schedule 10), since
// after a loss the outbox's once-only key no longer vouches for an entry that is gone.
func TestAReplayLeavesOutARowWhoseItemTheDeliverySettledWhileItRan(t *testing.T) {
	a1, a2, a3 := keeperMessage("a", 1), keeperMessage("a", 2), keeperMessage("a", 3)
	r := newKeeperRig(t, nil, 0)
	ctx := context.Background()
	for _, ev := range []event.Event{a1, a2, a3} {
		if err := r.k.journal.Record(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	appendRow := r.k.deliver
	r.k.deliver = func(ctx context.Context, ev event.Event) error {
		if ev.ID == a1.ID {
			// While a1 is appended, the delivery settles a2 (appended before the loss, delivered).
			r.k.settle(ctx, []event.Event{a2})
		}
		return appendRow(ctx, ev)
	}
	n, _, err := r.k.replay(ctx, time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	appended := slices.Clone(r.appended)
	r.mu.Unlock()
	if want := []string{a1.ID, a3.ID}; n != 2 || !slices.Equal(appended, want) {
		t.Fatalf("appended %d rows %v, want %v (a2 was settled during the replay)", n, appended, want)
	}
	// The next replay starts from what the journal holds: a2's row is gone, the others stay.
	r.k.deliver = appendRow
	if n, _, err := r.k.replay(ctx, time.Time{}, nil); err != nil || n != 2 {
		t.Fatalf("a second replay appended %d rows (err %v), want 2", n, err)
	}
}

// A loss noticed by the marker's eviction can leave the stream whole while the once-only keys of
// its items were evicted (allkeys-lru takes the cold keys first): a row whose item the stream
// still holds is left out, or the outbox would hold it twice and Laravel get it twice (chaos
// seed 2 schedule 10). A failed look at the stream fails the replay (retried).
func TestAReplayLeavesOutARowWhoseItemTheOutboxStillHolds(t *testing.T) {
	a1, a2, a3 := keeperMessage("a", 1), keeperMessage("a", 2), keeperMessage("a", 3)
	r := newKeeperRig(t, nil, 0)
	ctx := context.Background()
	for _, ev := range []event.Event{a1, a2, a3} {
		if err := r.k.journal.Record(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	r.k.inOutbox = func(context.Context) ([]event.Event, error) { return nil, errors.New("redis: connection refused") }
	if n, _, err := r.k.replay(ctx, time.Time{}, nil); err == nil || n != 0 {
		t.Fatalf("a replay that could not read the stream appended %d rows, err %v; want none and the error", n, err)
	}
	r.k.inOutbox = func(context.Context) ([]event.Event, error) { return []event.Event{a2}, nil }
	n, left, err := r.k.replay(ctx, time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	appended := slices.Clone(r.appended)
	r.mu.Unlock()
	if want := []string{a1.ID, a3.ID}; n != 2 || !slices.Equal(appended, want) || len(left) != 0 {
		t.Fatalf("appended %d rows %v (left %d), want %v (a2 is still in the stream)", n, appended, len(left), want)
	}
}

// A settled row (an item Laravel applied) is kept while Redis could still bring back an entry of
// it: it is deleted once it was settled more than the settled retention ago, and only once this
// process has watched Redis that long since its start and since the last loss it noticed, so a
// start after a long outage, or a loss noticed running, finds every row settled before it.
func TestSettledRowsArePrunedOnlyOnceTheProcessWatchedRedisForTheSettledRetention(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	const retention = 15 * time.Minute
	cases := []struct {
		name    string
		watched time.Duration // how long before now the process began watching Redis without a loss
		want    time.Time     // zero: nothing may be pruned
	}{
		{"just started (after an outage of any length)", time.Second, time.Time{}},
		{"started less than the retention ago", retention - time.Second, time.Time{}},
		{"a loss noticed 5 minutes ago", 5 * time.Minute, time.Time{}},
		{"watched exactly the retention", retention, now.Add(-retention)},
		{"watched for hours", 3 * time.Hour, now.Add(-retention)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := settledPruneBefore(now, now.Add(-c.watched), retention)
			if ok != !c.want.IsZero() || !got.Equal(c.want) {
				t.Fatalf("settledPruneBefore = %v, %v; want %v (zero: none)", got, ok, c.want)
			}
		})
	}
}

// The keeper's settled prune deletes what the rule allows and nothing before: a row settled
// before the previous run died survives a restart however old it is, until this run watched Redis
// for the settled retention.
func TestTheKeeperKeepsRowsSettledBeforeItsStartUntilItWatchedRedisForTheSettledRetention(t *testing.T) {
	db, err := storage.Open(context.Background(), storage.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	ctx := context.Background()
	k := newJournalKeeper(db, storage.DefaultJournalRetention, time.Minute, slog.New(slog.DiscardHandler))
	old := keeperMessage("a", 1)
	if err := k.journal.Record(ctx, old); err != nil {
		t.Fatal(err)
	}
	k.settle(ctx, []event.Event{old}) // settled now, by the run that dies
	start := time.Now()
	k.watchedSince.Store(start.UnixMilli())
	applied := func() bool {
		st, err := k.journal.States(ctx, []event.Event{old})
		if err != nil {
			t.Fatal(err)
		}
		return st[0].Applied
	}
	k.pruneSettled(start.Add(59 * time.Second)) // watched 59 s of the 1 min: nothing is pruned
	if !applied() {
		t.Fatal("a row settled before the start was pruned before the process watched Redis for the settled retention")
	}
	k.pruneSettled(start.Add(2 * time.Minute))
	if applied() {
		t.Fatal("a row settled 2 minutes ago, watched for 2 minutes, was kept past a settled retention of 1 minute")
	}
}
