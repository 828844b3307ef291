package session_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"testing/synctest"

	"wagate/gateway/event"
	"wagate/gateway/session"
	"wagate/gateway/session/sessiontest"
)

// qrHoldingSink accepts statuses at once and holds every QR code until its caller gives up, as a
// full outbox holds a normal-priority append while final states take the room.
type qrHoldingSink struct {
	mu       sync.Mutex
	accepted []string
}

func (s *qrHoldingSink) Deliver(ctx context.Context, ev event.Event) error {
	if ev.Kind == event.KindQR {
		<-ctx.Done()
		return ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accepted = append(s.accepted, string(ev.Kind)+":"+ev.Payload)
	return nil
}

func (s *qrHoldingSink) Close(context.Context) error { return nil }

func (s *qrHoldingSink) got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.accepted)
}

// Issue 19: a session's connected waited in its own queue behind its older QR code, which a full
// outbox held up to its 5 s deadline (longer now that room goes to final states first), and the
// code's refusal then made the session dirty. A later event that supersedes the QR code cancels
// the code's delivery: connected goes at once, the code is dropped as superseded, nothing dirty.
func TestAQRCodeWaitingForRoomIsDroppedWhenTheSessionConnects(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink := &qrHoldingSink{}
		var dropped []string
		driver := sessiontest.NewDriver()
		m, err := session.New(context.Background(), session.Config{Hooks: session.Hooks{
			EventDropped: func(ev event.Event, reason string) { dropped = append(dropped, string(ev.Kind)+":"+reason) },
		}}, driver, sessiontest.NewStore(), sink)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close(context.Background())
		if _, err := m.Start(context.Background(), "s1"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // pending accepted, code-1 held
		driver.Conn("s1").Scan()
		synctest.Wait()
		if got, want := sink.got(), []string{"status:pending", "status:connected"}; !slices.Equal(got, want) {
			t.Fatalf("accepted %q; want %q (connected must not wait behind the held QR code)", got, want)
		}
		if want := []string{"qr:" + session.DroppedSuperseded}; !slices.Equal(dropped, want) {
			t.Fatalf("dropped %q; want %q", dropped, want)
		}
		if n := m.Dirty(); n != 0 {
			t.Fatalf("%d dirty sessions; want 0 (a superseded code is not a refusal)", n)
		}
	})
}
