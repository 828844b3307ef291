package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"wagate/gateway/event"
	"wagate/internal/redistest"
)

func testEvent(sid string, ver int64, kind event.Kind, payload string) event.Event {
	return event.Event{
		ID: fmt.Sprintf("%s-%s-%d", sid, kind, ver), SessionID: sid, Kind: kind, Payload: payload,
		Time: time.Unix(1700000000, ver).UTC(), Version: ver, Priority: event.PriorityOf(kind, payload),
	}
}

func newOutbox(t *testing.T, b *redistest.Backend, cfg Config) *Outbox {
	t.Helper()
	cfg.Logger = slog.New(slog.DiscardHandler)
	if cfg.Consumer == "" {
		cfg.Consumer = "gw-a"
	}
	o, err := New(context.Background(), b.Client(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestAppendedEventsComeBackIntactAndLeaveOnlyWhenAcked(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		o := newOutbox(t, b, Config{})
		in := []event.Event{testEvent("s1", 1, event.KindQR, "qr-1"), testEvent("s1", 2, event.KindStatus, "connected")}
		for _, ev := range in {
			if _, err := o.Append(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
		got, err := o.ReadNew(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Event != in[0] || got[1].Event != in[1] {
			t.Fatalf("read %+v; want %+v", got, in)
		}
		if again, _ := o.ReadNew(ctx, 10); len(again) != 0 {
			t.Fatalf("ReadNew returned %d entries twice", len(again))
		}
		st, _ := o.Stats(ctx)
		if st.Length != 2 || st.Pending != 2 {
			t.Fatalf("before ack: %+v; want length 2 pending 2", st)
		}
		if err := o.Ack(ctx, got[0].ID); err != nil {
			t.Fatal(err)
		}
		st, _ = o.Stats(ctx)
		if st.Length != 1 || st.Pending != 1 {
			t.Fatalf("after one ack: %+v; want length 1 pending 1", st)
		}
	})
}

func TestARestartedGatewayRereadsItsOwnPendingEntries(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		first := newOutbox(t, b, Config{Consumer: "gw-a"})
		for v := int64(1); v <= 3; v++ {
			if _, err := first.Append(ctx, testEvent("s1", v, event.KindQR, "qr")); err != nil {
				t.Fatal(err)
			}
		}
		if got, _ := first.ReadNew(ctx, 10); len(got) != 3 {
			t.Fatalf("read %d; want 3", len(got))
		}
		// "Crash": a new Outbox with the same consumer name reads nothing new, but its pending.
		second := newOutbox(t, b, Config{Consumer: "gw-a"})
		if got, _ := second.ReadNew(ctx, 10); len(got) != 0 {
			t.Fatalf("ReadNew after restart = %d entries; want 0", len(got))
		}
		page1, err := second.ReadOwnPending(ctx, "0", 2)
		if err != nil || len(page1) != 2 {
			t.Fatalf("own pending page 1 = %d, %v; want 2", len(page1), err)
		}
		page2, err := second.ReadOwnPending(ctx, page1[1].ID, 2)
		if err != nil || len(page2) != 1 || page2[0].Event.Version != 3 {
			t.Fatalf("own pending page 2 = %+v, %v; want version 3", page2, err)
		}
	})
}

func TestAnotherGatewayClaimsADeadConsumersEntries(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		dead := newOutbox(t, b, Config{Consumer: "gw-dead"})
		alive := newOutbox(t, b, Config{Consumer: "gw-alive"})
		for v := int64(1); v <= 2; v++ {
			if _, err := dead.Append(ctx, testEvent("s1", v, event.KindQR, "qr")); err != nil {
				t.Fatal(err)
			}
		}
		if got, _ := dead.ReadNew(ctx, 10); len(got) != 2 {
			t.Fatal("dead consumer did not read its entries")
		}
		if got, _, err := alive.Claim(ctx, time.Hour, "0-0", 10); err != nil || len(got) != 0 {
			t.Fatalf("claim with min-idle 1h = %d, %v; want nothing (entries are fresh)", len(got), err)
		}
		got, next, err := alive.Claim(ctx, 0, "0-0", 10)
		if err != nil || len(got) != 2 || next != "0-0" {
			t.Fatalf("claim = %d entries, next %q, %v; want 2 and a complete scan", len(got), next, err)
		}
		if err := alive.Ack(ctx, got[0].ID, got[1].ID); err != nil {
			t.Fatal(err)
		}
		if st, _ := alive.Stats(ctx); st.Length != 0 || st.Pending != 0 {
			t.Fatalf("after ack: %+v", st)
		}
	})
}

func TestAFullOutboxMakesAppendWaitThenFailLoudly(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		// Filled by a patient gateway; an impatient one (1 s) then finds it full. The deadline is
		// long enough for Redis to answer at least once on a loaded machine (-race, CI).
		patient := newOutbox(t, b, Config{Max: 2, AppendTimeout: time.Minute, Consumer: "gw-patient"})
		for v := int64(1); v <= 2; v++ {
			if _, err := patient.Append(ctx, testEvent("s1", v, event.KindQR, "qr")); err != nil {
				t.Fatal(err)
			}
		}
		o := newOutbox(t, b, Config{Max: 2, AppendTimeout: time.Second})
		_, err := o.Append(ctx, testEvent("s1", 3, event.KindQR, "qr"))
		if !errors.Is(err, ErrFull) {
			t.Fatalf("append to a full outbox: %v; want ErrFull", err)
		}
		c := o.Counters()
		if c.AppendFailed != 1 || c.AppendWaited != 1 || c.Appended != 0 {
			t.Fatalf("counters %+v; want 1 waited, 1 failed", c)
		}
		if st, _ := o.Stats(ctx); st.Length != 2 {
			t.Fatalf("length %d; want the bound 2 (nothing dropped, nothing added)", st.Length)
		}
	})
}

func TestAWaitingAppendSucceedsOnceRoomIsFreed(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		o := newOutbox(t, b, Config{Max: 1, AppendTimeout: time.Minute})
		if _, err := o.Append(ctx, testEvent("s1", 1, event.KindQR, "qr")); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := o.Append(ctx, testEvent("s1", 2, event.KindQR, "qr"))
			done <- err
		}()
		got, err := o.ReadNew(ctx, 1)
		if err != nil || len(got) != 1 {
			t.Fatalf("read %d, %v", len(got), err)
		}
		if err := o.Ack(ctx, got[0].ID); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("waiting append: %v", err)
		}
	})
}

func TestDeadLettersKeepTheEventAndTheReason(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		o := newOutbox(t, b, Config{})
		ev := testEvent("s9", 7, event.KindStatus, "expired")
		if _, err := o.Append(ctx, ev); err != nil {
			t.Fatal(err)
		}
		got, _ := o.ReadNew(ctx, 1)
		if err := o.DeadLetter(ctx, got, "laravel answered 422"); err != nil {
			t.Fatal(err)
		}
		dls, err := o.DeadLetters(ctx, 10)
		if err != nil || len(dls) != 1 {
			t.Fatalf("dead letters = %d, %v", len(dls), err)
		}
		if dls[0].Event != ev || dls[0].Reason != "laravel answered 422" || dls[0].OutboxID != got[0].ID {
			t.Fatalf("dead letter %+v", dls[0])
		}
		st, _ := o.Stats(ctx)
		if st.Length != 0 || st.Pending != 0 || st.DeadLetters != 1 || o.Counters().DeadLettered != 1 {
			t.Fatalf("stats %+v counters %+v", st, o.Counters())
		}
	})
}

func TestInvalidEventsAreRefusedBeforeTheyAreStored(t *testing.T) {
	b := redistest.Mini(t)
	o := newOutbox(t, b, Config{})
	ev := testEvent("s1", 0, event.KindQR, "qr")
	if _, err := o.Append(context.Background(), ev); err == nil {
		t.Fatal("version 0 accepted")
	}
}

func TestTouchKeepsEntriesFromBeingClaimed(t *testing.T) {
	b := redistest.Real(t)
	ctx := context.Background()
	a := newOutbox(t, b, Config{Consumer: "gw-a"})
	other := newOutbox(t, b, Config{Consumer: "gw-b"})
	if _, err := a.Append(ctx, testEvent("s1", 1, event.KindQR, "qr")); err != nil {
		t.Fatal(err)
	}
	got, _ := a.ReadNew(ctx, 1)
	if err := a.Touch(ctx, got[0].ID); err != nil {
		t.Fatal(err)
	}
	if c, _, _ := other.Claim(ctx, time.Minute, "0-0", 10); len(c) != 0 {
		t.Fatalf("claimed %d touched entries", len(c))
	}
}

func BenchmarkAppend(b *testing.B) {
	redistest.EachBenchmark(b, func(b *testing.B, be *redistest.Backend) {
		o, err := New(context.Background(), be.Client(b), Config{Max: 1 << 40, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		b.ReportAllocs()
		i := int64(0)
		for b.Loop() {
			i++
			if _, err := o.Append(ctx, testEvent("s1", i, event.KindQR, "2@abcdefghijklmnopqrstuvwxyz0123456789")); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestAnOutboxSurvivesARedisThatLostEverything(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		o := newOutbox(t, b, Config{})
		if err := b.Client(t).FlushAll(ctx).Err(); err != nil { // a restart without persistence
			t.Fatal(err)
		}
		if _, _, err := o.Claim(ctx, 0, "0-0", 10); err != nil {
			t.Fatalf("claim on a lost group: %v", err)
		}
		if err := b.Client(t).FlushAll(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := o.Append(ctx, testEvent("s1", 1, event.KindQR, "qr")); err != nil {
			t.Fatal(err)
		}
		got, err := o.ReadNew(ctx, 10)
		if err != nil || len(got) != 1 {
			t.Fatalf("read after the group was lost: %d entries, %v; want the new event", len(got), err)
		}
	})
}

func TestAppendWaitsOutARedisRestart(t *testing.T) {
	b := redistest.Real(t)
	ctx := context.Background()
	o := newOutbox(t, b, Config{AppendTimeout: time.Minute})
	b.Real.Stop()
	done := make(chan error, 1)
	go func() {
		_, err := o.Append(ctx, testEvent("s1", 1, event.KindStatus, "connected"))
		done <- err
	}()
	// Restart only once the append has seen Redis fail.
	for deadline := time.Now().Add(30 * time.Second); o.Counters().AppendWaited == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the append never waited")
		}
		time.Sleep(time.Millisecond)
	}
	if err := b.Real.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("append across a Redis restart: %v", err)
	}
}

func TestAppendFailsLoudlyWhenRedisStaysDown(t *testing.T) {
	b := redistest.Real(t)
	o := newOutbox(t, b, Config{AppendTimeout: 50 * time.Millisecond})
	b.Real.Stop()
	_, err := o.Append(context.Background(), testEvent("s1", 1, event.KindQR, "qr"))
	if err == nil || errors.Is(err, ErrFull) {
		t.Fatalf("append with Redis down: %v; want a Redis error, not ErrFull", err)
	}
	if o.Counters().AppendFailed != 1 {
		t.Fatalf("counters %+v", o.Counters())
	}
}
