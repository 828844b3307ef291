package fakewa

import (
	"context"
	"testing"
	"time"
)

func TestEventLogKeepsOrderAndBoundsItsSize(t *testing.T) {
	l := newEventLog(10)
	for i := range 25 {
		l.add(Event{Kind: EventConnected, Detail: string(rune('a' + i))})
	}
	all, discarded, _ := l.since(0)
	if len(all) > 10 || discarded+uint64(len(all)) != 25 {
		t.Fatalf("kept %d, discarded %d; want at most 10 kept and 25 in total", len(all), discarded)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Seq != all[i-1].Seq+1 {
			t.Fatalf("sequence gap at %d: %d then %d", i, all[i-1].Seq, all[i].Seq)
		}
	}
	last := all[len(all)-1].Seq
	if got, _, _ := l.since(last - 2); len(got) != 2 || got[0].Seq != last-1 {
		t.Fatalf("since(last-2) = %d events starting %d", len(got), got[0].Seq)
	}
	for _, seq := range []uint64{last, last + 100, ^uint64(0)} {
		if got, _, _ := l.since(seq); len(got) != 0 {
			t.Fatalf("since(%d) returned %d events", seq, len(got))
		}
	}
}

func TestWaitReturnsPastAndFutureEvents(t *testing.T) {
	l := newEventLog(100)
	l.add(Event{Kind: EventPaired, JID: "a"})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if e, err := l.wait(ctx, 0, func(e Event) bool { return e.Kind == EventPaired }); err != nil || e.JID != "a" {
		t.Fatalf("past event: %+v, %v", e, err)
	}
	go func() {
		time.Sleep(10 * time.Millisecond)
		l.add(Event{Kind: EventConnected, JID: "b"})
	}()
	if e, err := l.wait(ctx, 0, func(e Event) bool { return e.Kind == EventConnected }); err != nil || e.JID != "b" {
		t.Fatalf("future event: %+v, %v", e, err)
	}
	short, cancelShort := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancelShort()
	if _, err := l.wait(short, 0, func(e Event) bool { return e.Kind == EventDropped }); err == nil {
		t.Fatal("wait for an event that never comes returned no error")
	}
}
