package cache

import (
	"context"
	"testing"

	"wagate/gateway/event"
	"wagate/gateway/laravel"
	"wagate/internal/redistest"
)

func TestOwedWritesKeepTheLatestEventPerSessionAndKindUntilWritten(t *testing.T) {
	type step struct {
		op  string // "add" or "paid"
		ev  event.Event
		ok  bool // add's answer
		got map[event.Kind]int64
	}
	s1 := func(kind event.Kind, v int64) event.Event {
		if kind == event.KindQR {
			return qrEvent("s1", v, "2@c")
		}
		return statusEvent("s1", v, laravel.StatusPending)
	}
	cases := []struct {
		name  string
		max   int
		steps []step
	}{
		{"a newer event replaces the owed one, an older one does not", 10, []step{
			{"add", s1(event.KindStatus, 3), true, map[event.Kind]int64{event.KindStatus: 3}},
			{"add", s1(event.KindStatus, 5), true, map[event.Kind]int64{event.KindStatus: 5}},
			{"add", s1(event.KindStatus, 4), true, map[event.Kind]int64{event.KindStatus: 5}},
		}},
		{"kinds are owed apart", 10, []step{
			{"add", s1(event.KindStatus, 3), true, map[event.Kind]int64{event.KindStatus: 3}},
			{"add", s1(event.KindQR, 4), true, map[event.Kind]int64{event.KindStatus: 3, event.KindQR: 4}},
			{"paid", s1(event.KindQR, 4), false, map[event.Kind]int64{event.KindStatus: 3}},
		}},
		{"a write of an older version pays nothing", 10, []step{
			{"add", s1(event.KindStatus, 5), true, map[event.Kind]int64{event.KindStatus: 5}},
			{"paid", s1(event.KindStatus, 4), false, map[event.Kind]int64{event.KindStatus: 5}},
			{"paid", s1(event.KindStatus, 6), false, map[event.Kind]int64{}},
		}},
		{"the bound refuses new sessions, not newer events of owed ones", 1, []step{
			{"add", s1(event.KindStatus, 5), true, map[event.Kind]int64{event.KindStatus: 5}},
			{"add", statusEvent("s2", 1, laravel.StatusPending), false, map[event.Kind]int64{event.KindStatus: 5}},
			{"add", s1(event.KindStatus, 6), true, map[event.Kind]int64{event.KindStatus: 6}},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := owedWrites{max: c.max}
			for i, st := range c.steps {
				if st.op == "add" {
					if ok := o.add(st.ev, 0); ok != st.ok {
						t.Fatalf("step %d: add = %v; want %v", i, ok, st.ok)
					}
				} else {
					o.paid(st.ev)
				}
				got := map[event.Kind]int64{}
				for _, w := range o.of("s1") {
					got[w.ev.Kind] = w.ev.Version
				}
				if len(got) != len(st.got) {
					t.Fatalf("step %d: owed %v; want %v", i, got, st.got)
				}
				for k, v := range st.got {
					if got[k] != v {
						t.Fatalf("step %d: owed %v; want %v", i, got, st.got)
					}
				}
			}
		})
	}
}

// Chaos seed 2 schedule 42: sessions created while Redis was paused had every write-through
// refused, so once Redis answered again they had no record in L2 and each status read asked
// Laravel (4.5 GET /api/whatsapp/sessions/{id} per second right after the pause, with the backlog
// of batches). The events Redis did not take are now owed: while Redis fails the reads answer
// from them, and the first read after it is back writes them again; Laravel is not asked.
func TestEventsRedisDidNotTakeAreServedAndWrittenAgainWithoutAskingLaravel(t *testing.T) {
	b := redistest.Mini(t)
	lv := &fakeLaravel{}
	c := newCache(t, b, lv, newClock(), "gw-a")
	d := c.WriteThrough(&recordingDelivery{})
	ctx := context.Background()

	b.Mini.SetError("LOADING Redis is loading the dataset in memory") // Redis refuses every command
	if err := d.Deliver(ctx, qrEvent("s1", 1, "2@code")); err != nil {
		t.Fatal(err)
	}
	if err := d.Deliver(ctx, statusEvent("s1", 2, laravel.StatusPending)); err != nil {
		t.Fatal(err)
	}
	if n := c.Counters().WriteErrors; n != 2 {
		t.Fatalf("write errors %d; want both write-throughs refused", n)
	}
	s, err := c.State(ctx, "s1")
	if err != nil || s.Status != laravel.StatusPending || s.StatusVersion != 2 {
		t.Fatalf("read while Redis fails: %+v, %v; want pending v2 from the owed events", s, err)
	}

	b.Mini.SetError("")
	c.FlushL1() // as after a reconnect
	s, err = c.State(ctx, "s1")
	if err != nil || s.Level != "l2" || s.Status != laravel.StatusPending || s.StatusVersion != 2 {
		t.Fatalf("first read after Redis is back: %+v, %v; want pending v2 from L2", s, err)
	}
	if n := lv.calls.Load(); n != 0 {
		t.Fatalf("Laravel asked %d times; want none: the gateway's own events answer", n)
	}
	// Written again: another replica (a fresh cache) reads it from L2 as well.
	other := newCache(t, b, lv, newClock(), "gw-b")
	if s := mustState(t, other, "s1"); s.Level != "l2" || s.StatusVersion != 2 || s.QRVersion != 0 {
		t.Fatalf("another replica reads %+v; want pending v2 from L2 (the older code is not current)", s)
	}
	if n := c.owed.len(); n != 0 {
		t.Fatalf("%d sessions still owed after the write", n)
	}
}
