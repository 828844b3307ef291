package batch

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"wagate/gateway/event"
	"wagate/gateway/outbox"
)

// The running flusher (Start, not Poll) on the bubble's fake clock: a normal event waits exactly
// BatchInterval, a HIGH event a twentieth of PriorityInterval after a quiet spell and half of it
// right after another flush of QR codes and statuses (the priority spacing). miniredis is served over in-memory
// pipes inside the bubble, so nothing waits for real time.
func TestTheRunningFlusherKeepsItsIntervalsOnAFakeClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := miniredis.NewMiniRedis()
		defer m.Close()
		rdb := redis.NewClient(&redis.Options{
			Addr: "127.0.0.1:1", Protocol: 2, PoolSize: 4, ConnMaxIdleTime: -1, // never dialled: Dialer pipes to miniredis
			Dialer: func(context.Context, string, string) (net.Conn, error) { return m.Dial() },
		})
		defer rdb.Close()
		log := slog.New(slog.DiscardHandler)
		ob, err := outbox.New(context.Background(), rdb, outbox.Config{Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		lv := newLaravelModel()
		d, err := New(Options{Outbox: ob, Sender: lv, Logger: log, Config: Config{
			BatchInterval: 5 * time.Second, PriorityInterval: time.Second, PollInterval: 100 * time.Millisecond,
		}})
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		sentAfter := func(e event.Event) time.Duration {
			t.Helper()
			start := time.Now()
			if err := d.Deliver(context.Background(), e); err != nil {
				t.Fatal(err)
			}
			<-lv.sentCh
			return time.Since(start)
		}
		if got := sentAfter(ev("s1", 1, event.KindQR, "q")); got < 5*time.Second || got > 5*time.Second+100*time.Millisecond {
			t.Errorf("a normal event reached Laravel after %v; want the 5 s batch interval (+ one poll)", got)
		}
		// Right after that flush a HIGH event waits for the priority spacing (half the interval).
		if got := sentAfter(ev("s2", 1, event.KindStatus, "connected")); got < 500*time.Millisecond || got > 600*time.Millisecond {
			t.Errorf("a HIGH event right after a flush reached Laravel after %v; want the 500 ms priority spacing", got)
		}
		// After a quiet spell, only its linger.
		time.Sleep(time.Second)
		if got := sentAfter(ev("s3", 1, event.KindStatus, "connected")); got < 50*time.Millisecond || got > 100*time.Millisecond {
			t.Errorf("a HIGH event after a quiet spell reached Laravel after %v; want its 50 ms linger", got)
		}
		// BatchSize (50) waiting items flush at once, without waiting for the interval.
		start := time.Now()
		for i := 0; i < DefaultBatchSize; i++ {
			if err := d.Deliver(context.Background(), ev(fmt.Sprintf("b%d", i), 1, event.KindQR, "q")); err != nil {
				t.Fatal(err)
			}
		}
		c := <-lv.sentCh
		if got := time.Since(start); len(c.items) != DefaultBatchSize || got > 100*time.Millisecond {
			t.Errorf("a full batch (%d items) reached Laravel after %v; want at once", len(c.items), got)
		}
		if m := d.Snapshot(context.Background()); m.Flushes["size"] != 1 || m.Flushes["time"] != 1 || m.Flushes["priority"] != 2 {
			t.Errorf("flushes %v; want a size, a time and two priority flushes", m.Flushes)
		}
		if err := d.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}
