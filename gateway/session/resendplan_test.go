package session

import (
	"slices"
	"testing"
	"time"

	"wagate/gateway/event"
	"wagate/gateway/laravel"
)

// What a resync sends again for a dirty session: its current status, and its QR code only while
// that code is still shown. An expired code is never sent again.
func TestAResyncSendsTheCurrentStatusAndOnlyAQRCodeStillShown(t *testing.T) {
	now := time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC)
	status := func(s laravel.Status) resent { return resent{event.KindStatus, string(s)} }
	qr := resent{event.KindQR, "code-2"}
	cases := []struct {
		name      string
		status    laravel.Status
		qr        string
		qrExpires time.Time
		want      []resent
	}{
		{"a session without a status yet sends nothing", "", "", time.Time{}, nil},
		{"connected", laravel.StatusConnected, "", time.Time{}, []resent{status(laravel.StatusConnected)}},
		{"logged out", laravel.StatusLoggedOut, "", time.Time{}, []resent{status(laravel.StatusLoggedOut)}},
		{"disconnected", laravel.StatusDisconnected, "", time.Time{}, []resent{status(laravel.StatusDisconnected)}},
		{"expired", laravel.StatusExpired, "", time.Time{}, []resent{status(laravel.StatusExpired)}},
		{"pending with its code shown", laravel.StatusPending, "code-2", now.Add(time.Second), []resent{status(laravel.StatusPending), qr}},
		{"pending between codes", laravel.StatusPending, "", time.Time{}, []resent{status(laravel.StatusPending)}},
		{"pending whose code expired before its timer ran", laravel.StatusPending, "code-2", now.Add(-time.Millisecond), []resent{status(laravel.StatusPending)}},
		{"pending whose code expires now", laravel.StatusPending, "code-2", now, []resent{status(laravel.StatusPending)}},
		{"a code left from pairing is not sent with connected", laravel.StatusConnected, "code-2", now.Add(time.Second), []resent{status(laravel.StatusConnected)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := resendPlan(c.status, c.qr, c.qrExpires, now); !slices.Equal(got, c.want) {
				t.Fatalf("resendPlan = %v; want %v", got, c.want)
			}
		})
	}
}

// Which later event of a session makes its queued (or in-flight) QR code moot.
func TestAQRCodeIsSupersededByANewerCodeOrAStatusThatEndsItsDisplay(t *testing.T) {
	qr := event.Event{Kind: event.KindQR, Payload: "code-1"}
	status := func(s laravel.Status) event.Event { return event.Event{Kind: event.KindStatus, Payload: string(s)} }
	msg := event.Event{Kind: event.KindMessage}
	cases := []struct {
		name  string
		ev    event.Event
		later []event.Event
		moot  bool
	}{
		{"nothing behind it", qr, nil, false},
		{"a newer code", qr, []event.Event{{Kind: event.KindQR, Payload: "code-2"}}, true},
		{"connected", qr, []event.Event{status(laravel.StatusConnected)}, true},
		{"disconnected", qr, []event.Event{status(laravel.StatusDisconnected)}, true},
		{"logged out", qr, []event.Event{status(laravel.StatusLoggedOut)}, true},
		{"expired", qr, []event.Event{status(laravel.StatusExpired)}, true},
		{"pending (a resync sends pending, then the code)", qr, []event.Event{status(laravel.StatusPending)}, false},
		{"a message", qr, []event.Event{msg}, false},
		{"a message, then connected", qr, []event.Event{msg, status(laravel.StatusConnected)}, true},
		{"a status is never dropped so", status(laravel.StatusPending), []event.Event{status(laravel.StatusConnected)}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := mootQR(c.ev, c.later); got != c.moot {
				t.Fatalf("mootQR = %v; want %v", got, c.moot)
			}
		})
	}
}
