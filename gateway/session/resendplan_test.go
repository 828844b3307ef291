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
