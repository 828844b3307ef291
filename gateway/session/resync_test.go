package session_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"wagate/gateway/event"
	"wagate/gateway/session"
)

var errOutboxFull = errors.New("outbox: full")

// Issue 19 #4: an event the delivery refused was logged and dropped, and Laravel kept the old
// state. Now the session is dirty until its current status is sent again with a new version.
func TestARefusedEventMakesTheSessionDirtyUntilItsCurrentStatusIsSentAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var refused []event.Event
		r := newRig(t, session.Config{ResyncRetry: 5 * time.Second,
			Hooks: session.Hooks{DeliveryFailed: func(ev event.Event, _ error) { refused = append(refused, ev) }}})
		defer r.close()
		r.start("s1")
		c := r.driver.Conn("s1")
		c.Scan()
		synctest.Wait()
		r.sink.SetRefusing(errOutboxFull)
		if _, err := r.m.Stop(context.Background(), "s1"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if len(refused) != 1 || refused[0].Payload != "disconnected" {
			t.Fatalf("refused %v; want the disconnected status", refused)
		}
		if r.m.Dirty() != 1 {
			t.Fatalf("dirty sessions %d; want 1", r.m.Dirty())
		}
		// Still refusing: the retry is refused too, and the session stays dirty.
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if r.m.Dirty() != 1 || len(refused) != 2 {
			t.Fatalf("after a refused retry: dirty %d, refused %d; want 1 and 2", r.m.Dirty(), len(refused))
		}
		r.sink.SetRefusing(nil)
		time.Sleep(5 * time.Second)
		r.wantEvents("s1", "status:pending", "qr:code-1", "status:connected", "status:disconnected")
		evs := r.sink.Events()
		last := evs[len(evs)-1]
		if last.Version <= refused[len(refused)-1].Version {
			t.Fatalf("resent version %d; want above the refused %d", last.Version, refused[len(refused)-1].Version)
		}
		if r.m.Dirty() != 0 {
			t.Fatalf("dirty sessions %d after the resend was accepted; want 0", r.m.Dirty())
		}
	})
}

func TestAnEventAcceptedAgainResendsTheDirtySessionsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, session.Config{ResyncRetry: time.Hour})
		defer r.close()
		r.sink.SetRefusing(errOutboxFull)
		r.start("s1") // pending and its first code, both refused
		if r.m.Dirty() != 1 {
			t.Fatalf("dirty sessions %d; want 1", r.m.Dirty())
		}
		r.sink.SetRefusing(nil)
		r.start("s2") // accepted: the delivery works again
		r.wantEvents("s1", "status:pending", "qr:code-1")
		if r.m.Dirty() != 0 {
			t.Fatalf("dirty sessions %d; want 0", r.m.Dirty())
		}
	})
}

func TestResyncAllSendsEveryCurrentStateAgainWithNewVersions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, _ := pairedRig(t)
		defer r.close()
		r.start("s2")
		before := map[string]int64{"s1": r.info("s1").Version, "s2": r.info("s2").Version}
		r.m.ResyncAll()
		r.wantEvents("s1", "status:pending", "qr:code-1", "status:connected", "status:connected")
		r.wantEvents("s2", "status:pending", "qr:code-1", "status:pending", "qr:code-1")
		for id, v := range before {
			if got := r.info(id).Version; got <= v {
				t.Fatalf("%s: version %d after the resync; want above %d", id, got, v)
			}
		}
	})
}

func TestAStopWithADirtySessionLeavesItDirty(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, session.Config{ResyncRetry: time.Hour})
		r.sink.SetRefusing(errOutboxFull)
		r.start("s1")
		r.close()
		if r.m.Dirty() != 1 {
			t.Fatalf("dirty sessions after close %d; want 1 (the stop is not clean)", r.m.Dirty())
		}
	})
}
