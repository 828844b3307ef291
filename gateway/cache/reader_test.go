package cache

import (
	"context"
	"errors"
	"testing"

	"wagate/gateway/laravel"
	"wagate/gateway/session"
	"wagate/internal/redistest"
)

// localSessions is a session manager holding a fixed set of sessions.
type localSessions map[string]session.Info

func (l localSessions) Get(_ context.Context, id string) (session.Info, error) {
	if in, ok := l[id]; ok {
		return in, nil
	}
	return session.Info{}, session.ErrNotFound
}

func (l localSessions) List(context.Context, string, int) ([]session.Info, string, error) {
	var out []session.Info
	for _, in := range l {
		out = append(out, in)
	}
	return out, "", nil
}

func TestTheReaderServesOwnSessionsLocallyAndOthersThroughTheCache(t *testing.T) {
	b := redistest.Mini(t)
	ctx := context.Background()
	owner := newCache(t, b, &fakeLaravel{}, newClock(), "gw-owner")
	other := newCache(t, b, &fakeLaravel{}, newClock(), "gw-other")
	local := localSessions{"mine": {SessionID: "mine", Status: laravel.StatusConnected, Connected: true, Version: 3}}
	r := other.Reader(local)

	if in, err := r.Get(ctx, "mine"); err != nil || !in.Connected || in.Version != 3 {
		t.Fatalf("own session: %+v, %v", in, err)
	}
	// A session the other replica owns: its events were written through by its owner.
	_ = owner.Record(ctx, statusEvent("theirs", 4, laravel.StatusPending))
	_ = owner.Record(ctx, qrEvent("theirs", 5, "2@qr"))
	in, err := r.Get(ctx, "theirs")
	if err != nil || in.Status != laravel.StatusPending || in.QR != "2@qr" || in.Version != 5 || in.QRExpiresAt.IsZero() {
		t.Fatalf("other replica's session: %+v, %v", in, err)
	}
	if _, err := r.Get(ctx, "nobody"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("unknown session: %v; want session.ErrNotFound", err)
	}
	if list, _, _ := r.List(ctx, "", 10); len(list) != 1 {
		t.Fatalf("list %+v; want the local sessions", list)
	}
}
