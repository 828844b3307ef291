package cache

import (
	"context"
	"errors"
	"fmt"

	"wagate/gateway/session"
)

// LocalReader reads the sessions this gateway owns (the session manager).
type LocalReader interface {
	Get(ctx context.Context, id string) (session.Info, error)
	List(ctx context.Context, after string, limit int) ([]session.Info, string, error)
}

// Reader answers GET /sessions/{id} and /sessions/{id}/qr: from the local session manager for the
// sessions this gateway owns (the source of truth), and through the cache (L1, L2 written by the
// owning gateway, then Laravel) for the others, e.g. a session owned by another replica. Lists are
// local.
type Reader struct {
	local LocalReader
	c     *Cache
}

// Reader returns a Reader that falls back to the cache for sessions unknown to local.
func (c *Cache) Reader(local LocalReader) *Reader { return &Reader{local: local, c: c} }

// Get returns the local session, or the cached state of a session this gateway does not own; an
// unknown session gives an error matching session.ErrNotFound.
func (r *Reader) Get(ctx context.Context, id string) (session.Info, error) {
	info, err := r.local.Get(ctx, id)
	if !errors.Is(err, session.ErrNotFound) {
		return info, err
	}
	st, cerr := r.c.State(ctx, id)
	if errors.Is(cerr, ErrUnknownSession) {
		return session.Info{}, err
	}
	if cerr != nil {
		return session.Info{}, fmt.Errorf("cache reader: %w", cerr)
	}
	out := session.Info{
		SessionID:   id,
		Status:      st.Status,
		Connected:   false, // not connected to this gateway
		QR:          st.QR,
		QRExpiresAt: st.QRExpiresAt,
		Version:     max(st.StatusVersion, st.QRVersion),
	}
	return out, nil
}

// List lists the local sessions.
func (r *Reader) List(ctx context.Context, after string, limit int) ([]session.Info, string, error) {
	return r.local.List(ctx, after, limit)
}
