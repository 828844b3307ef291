package batch

// Regression test of issue 16's duplicated message across a replica's SIGSTOP (chaos-cluster,
// seed 1, schedule 1: replica 0 paused 12 s, past its 10 s lease). Its flusher was in the middle
// of a step when the process stopped: it had asked whether it held the session's shard (yes)
// and was waiting for Redis. Meanwhile the shard's new holder adopted the waiting message from
// the stream, found no record of a batch for it and sent it under a key of its own. On SIGCONT
// the paused step went on: it formed a batch of the message, recorded it and sent it under a
// second key, 77 ms after the replica had fenced itself. Laravel applied it twice.

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"wagate/gateway/cluster"
	"wagate/gateway/outbox"
	"wagate/internal/redistest"
)

// pauseHook stops the process's Redis client at one command, once, as a SIGSTOP landing while the
// flusher waits for Redis would: the command is sent (and answered, when after is set) only when
// the test resumes it.
type pauseHook struct {
	cmd    string // lower-case command name
	after  bool   // pause after the command ran (its answer waits), not before it is sent
	armed  atomic.Bool
	paused chan struct{}
	resume chan struct{}
}

func newPauseHook(cmd string, after bool) *pauseHook {
	return &pauseHook{cmd: cmd, after: after, paused: make(chan struct{}), resume: make(chan struct{})}
}

func (h *pauseHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *pauseHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h *pauseHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() != h.cmd || !h.newEntries(cmd) || !h.armed.CompareAndSwap(true, false) {
			return next(ctx, cmd)
		}
		var err error
		if h.after {
			err = next(ctx, cmd)
		}
		close(h.paused)
		<-h.resume
		if !h.after {
			err = next(ctx, cmd)
		}
		return err
	}
}

// newEntries tells a read of new entries (XREADGROUP ... >) from a read of the consumer's own
// pending ones, which the step makes before it asks about its shards.
func (h *pauseHook) newEntries(cmd redis.Cmder) bool {
	if h.cmd != "xreadgroup" {
		return true
	}
	args := cmd.Args()
	return len(args) > 0 && args[len(args)-1] == ">"
}

// pausableReplica is a replica (outbox and delivery) whose Redis client pauses at hook.
func pausableReplica(t *testing.T, b *redistest.Backend, cfg Config, obCfg outbox.Config, lv *laravelModel, clk *fakeClock, hook *pauseHook) *fixture {
	t.Helper()
	rdb := b.Client(t)
	rdb.AddHook(hook)
	log := slog.New(slog.DiscardHandler)
	obCfg.Logger = log
	ob, err := outbox.New(context.Background(), rdb, obCfg)
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Options{Outbox: ob, Sender: lv, Config: cfg, Clock: clk, Jitter: func() float64 { return 0 }, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{d: d, ob: ob, lv: lv, clk: clk, b: b}
}

func TestAReplicaPausedPastItsLeaseMidStepSendsNothingTheShardsNewHolderSent(t *testing.T) {
	cases := []struct {
		name  string
		cmd   string
		after bool
	}{
		// The run's case: the batch is formed and recorded after the new holder sent its items.
		{name: "paused reading new entries, before its batch is formed", cmd: "xreadgroup"},
		// The record landed before the takeover: the new holder sends the batch under its key.
		{name: "paused with its batch's record landed, the answer unread", cmd: "hset", after: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
				ctx := context.Background()
				const shards = 16
				k := cluster.Shard("s1", shards)
				lv, clk := newLaravelModel(), newFakeClock()
				cfg := Config{BatchSize: 50, MessageInterval: time.Second}

				hook := newPauseHook(tc.cmd, tc.after)
				paused := pausableReplica(t, b, cfg, outbox.Config{Shards: shards, GatewayID: "gw-1", Consumer: "gw-1/1"}, lv, clk, hook)
				h1 := &shardSet{held: map[int]bool{k: true}}
				paused.ob.SetHolds(h1.holds)
				paused.deliver(t, message("s1", 1))
				paused.poll(t) // the message waits for its batch
				if n := len(lv.Calls()); n != 0 {
					t.Fatalf("%d batches sent before the message's interval ended", n)
				}
				clk.Advance(2 * time.Second) // due at the next step

				hook.armed.Store(true)
				stepped := make(chan error, 1)
				go func() { stepped <- paused.d.Poll(ctx) }()
				select {
				case <-hook.paused:
				case <-time.After(10 * time.Second):
					t.Fatalf("the step never reached %s", tc.cmd)
				}

				// The pause outlasts the lease: the member holds nothing any more
				// (cluster's TestAMemberResumedPastItsRenewDeadlineHoldsNothingBeforeRunNotices),
				// and another replica claims the shard, adopts the message and sends it with the
				// session's next message, which it received meanwhile (a batch of other entries
				// than the paused replica's, so under another key).
				h1.set(k, false)
				holder, h2 := newFixtureWith(t, b, cfg, outbox.Config{Shards: shards, GatewayID: "gw-2", Consumer: "gw-2/1"}, lv, clk), &shardSet{held: map[int]bool{}}
				holder.ob.SetHolds(h2.holds)
				h2.set(k, true)
				holder.poll(t)
				holder.deliver(t, message("s1", 2))
				for range 3 {
					holder.poll(t)
					clk.Advance(2 * time.Second)
				}
				if n := len(keysPerItem(lv.Calls())); n != 2 {
					t.Fatalf("the new holder delivered %d messages; want the one it adopted and the next", n)
				}

				close(hook.resume) // SIGCONT: the paused step goes on
				select {
				case err := <-stepped:
					if err != nil {
						t.Fatal(err)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("the resumed step never ended")
				}
				for range 2 {
					paused.poll(t)
					holder.poll(t)
					clk.Advance(2 * time.Second)
				}

				calls := lv.Calls()
				for item, keys := range keysPerItem(calls) {
					if len(keys) != 1 {
						t.Errorf("%s reached Laravel under %d Idempotency-Keys: applied %d times (calls %+v)", item, len(keys), len(keys), calls)
					}
				}
				if n := paused.outboxLength(t); n != 0 {
					t.Errorf("%d entries left in the outbox", n)
				}
				if recs, err := holder.ob.RecordedBatches(ctx); err != nil || len(recs) != 0 {
					t.Errorf("batch records left: %+v, %v", recs, err)
				}
			})
		})
	}
}
