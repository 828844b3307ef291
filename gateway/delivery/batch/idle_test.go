package batch

import (
	"context"
	"log/slog"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"wagate/gateway/event"
	"wagate/gateway/outbox"
	"wagate/internal/redistest"
)

func TestAnIdleFlusherWaitsLongerAtEachStepUpToTenPollIntervals(t *testing.T) {
	const poll = 100 * time.Millisecond
	for _, tc := range []struct {
		streak int
		want   time.Duration
	}{
		{0, poll},
		{1, 2 * poll},
		{2, 4 * poll},
		{3, 8 * poll},
		{4, 10 * poll},
		{10, 10 * poll},
		{1000, 10 * poll},
	} {
		if got := idlePollWait(poll, tc.streak); got != tc.want {
			t.Errorf("idle step %d: wait %v, want %v", tc.streak, got, tc.want)
		}
	}
}

// newEntryReads counts the reads of new outbox entries (XREADGROUP ... >) a Redis client makes.
type newEntryReads struct{ n atomic.Int64 }

func (h *newEntryReads) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *newEntryReads) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h *newEntryReads) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if args := cmd.Args(); cmd.Name() == "xreadgroup" && len(args) > 0 && args[len(args)-1] == ">" {
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

// startIdleDelivery starts a delivery with nothing to deliver, on a Redis client whose reads of
// new entries are counted.
func startIdleDelivery(t testing.TB, b *redistest.Backend, poll time.Duration) (*Delivery, *newEntryReads) {
	t.Helper()
	rdb := b.Client(t)
	reads := &newEntryReads{}
	rdb.AddHook(reads)
	log := slog.New(slog.DiscardHandler)
	ob, err := outbox.New(context.Background(), rdb, outbox.Config{Consumer: "gw-idle", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Options{Outbox: ob, Sender: newLaravelModel(), Config: Config{PollInterval: poll}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = d.Close(ctx)
	})
	return d, reads
}

// An idle gateway's flusher no longer reads the outbox every poll interval: over a second with
// nothing appended it reads at most about once per ten poll intervals (before: every one, ~100
// reads at 10 ms; a loaded machine only makes the count smaller).
func TestAnIdleFlusherReadsTheOutboxAboutOncePerTenPollIntervals(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		const poll = 10 * time.Millisecond
		_, reads := startIdleDelivery(t, b, poll)
		time.Sleep(200 * time.Millisecond) // past the first idle steps' shorter waits
		before := reads.n.Load()
		time.Sleep(time.Second)
		if n := reads.n.Load() - before; n > 20 {
			t.Fatalf("%d reads of new entries in 1 s of idleness at a %v poll interval; want <= 20 (one per %v, with slack)", n, poll, idlePollFactor*poll)
		}
	})
}

// An append to an idle gateway wakes its flusher at once instead of waiting out the idle wait.
func TestAnAppendWakesTheIdleFlusherAtOnce(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		const poll = 3 * time.Second // the first idle wait: 3 s, the next ones longer
		d, reads := startIdleDelivery(t, b, poll)
		deadline := time.Now().Add(10 * time.Second)
		for !d.idling.Load() {
			if time.Now().After(deadline) {
				t.Fatal("the flusher never went idle")
			}
			time.Sleep(time.Millisecond)
		}
		before := reads.n.Load()
		if err := d.Deliver(context.Background(), ev("s1", 1, event.KindQR, "code-1")); err != nil {
			t.Fatal(err)
		}
		woke := time.Now().Add(poll / 2) // far below the wait it was in
		for reads.n.Load() == before {
			if time.Now().After(woke) {
				t.Fatalf("the flusher did not read the append within %v; it waits up to %v when idle", poll/2, poll)
			}
			time.Sleep(time.Millisecond)
		}
	})
}

// BenchmarkIdleFlusher is one second of a started delivery with nothing to deliver, at the default
// poll interval, on redis-server: it reports the reads of new entries and this process's CPU per
// second of idleness (the flusher's share of an idle gateway's CPU; redis-server's is apart).
//
//	go test ./gateway/delivery/batch -run '^$' -bench IdleFlusher -benchtime 10x
func BenchmarkIdleFlusher(b *testing.B) {
	_, reads := startIdleDelivery(b, redistest.Real(b), DefaultPollInterval)
	time.Sleep(2 * time.Second) // past the first idle steps' shorter waits (100, 200, 400, 800 ms)
	r0, cpu0 := reads.n.Load(), processCPU(b)
	for b.Loop() {
		time.Sleep(time.Second)
	}
	b.ReportMetric(float64(reads.n.Load()-r0)/float64(b.N), "reads/s")
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/s")
}

// processCPU is the CPU time (user and system) this process has used so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
