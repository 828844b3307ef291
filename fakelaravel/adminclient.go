package fakelaravel

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// ErrAdmin wraps every non-2xx answer of the admin API.
var ErrAdmin = errors.New("fakelaravel admin API")

// AdminClient talks to a fakelaravel's admin API under /_fake/.
type AdminClient struct {
	base  string
	token string
	http  *http.Client
}

// NewAdminClient returns a client for the fakelaravel at baseURL (e.g. "http://127.0.0.1:8000")
// using the admin token; hc nil means http.DefaultClient.
func NewAdminClient(baseURL, token string, hc *http.Client) *AdminClient {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &AdminClient{base: strings.TrimRight(baseURL, "/"), token: token, http: hc}
}

func (c *AdminClient) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%w: encode: %w", ErrAdmin, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrAdmin, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %s %s: %w", ErrAdmin, method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%w: %s %s: read: %w", ErrAdmin, method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%w: %s %s: %s: %s", ErrAdmin, method, path, resp.Status, bytes.TrimSpace(data))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%w: %s %s: decode: %w", ErrAdmin, method, path, err)
		}
	}
	return nil
}

// GetStats returns the server's Stats.
func (c *AdminClient) GetStats(ctx context.Context) (Stats, error) {
	var st Stats
	err := c.call(ctx, http.MethodGet, PathStats, nil, &st)
	return st, err
}

// GetStatsRecent returns the server's Stats with only the last seconds seconds of per-second
// series (none for 0): cheaper to poll often.
func (c *AdminClient) GetStatsRecent(ctx context.Context, seconds int) (Stats, error) {
	var st Stats
	err := c.call(ctx, http.MethodGet, fmt.Sprintf("%s?series_seconds=%d", PathStats, max(seconds, 0)), nil, &st)
	return st, err
}

// GetState returns every session as stored.
func (c *AdminClient) GetState(ctx context.Context) (State, error) {
	var st State
	err := c.call(ctx, http.MethodGet, PathState, nil, &st)
	return st, err
}

// GetStateSince returns the sessions changed after cursor since (0: every session, Full) and the
// cursor to ask with next (GET /_fake/state?since=N). A server without the change feed answers
// every session with Cursor 0 and Full false: read such an answer as a full snapshot.
func (c *AdminClient) GetStateSince(ctx context.Context, since int64) (StateChanges, error) {
	var st StateChanges
	err := c.call(ctx, http.MethodGet, fmt.Sprintf("%s?since=%d", PathState, max(since, 0)), nil, &st)
	return st, err
}

// GetMessages returns every stored message and receipt (GET /_fake/messages).
func (c *AdminClient) GetMessages(ctx context.Context) (MessagesState, error) {
	var st MessagesState
	err := c.call(ctx, http.MethodGet, PathMessages, nil, &st)
	return st, err
}

// GetFaults returns the faults in effect.
func (c *AdminClient) GetFaults(ctx context.Context) (Faults, error) {
	var f Faults
	err := c.call(ctx, http.MethodGet, PathFaults, nil, &f)
	return f, err
}

// SetFaults replaces the faults in effect; down windows count from the moment the server receives them.
func (c *AdminClient) SetFaults(ctx context.Context, f Faults) error {
	return c.call(ctx, http.MethodPut, PathFaults, f, nil)
}

// GetRefusals returns every batch item refused by a refuse_items fault window since start (or
// the last reset): the only items a gateway may dead-letter.
func (c *AdminClient) GetRefusals(ctx context.Context) (Refusals, error) {
	var r Refusals
	err := c.call(ctx, http.MethodGet, PathRefusals, nil, &r)
	return r, err
}

// Reset deletes every session and processed batch and restarts the stats.
func (c *AdminClient) Reset(ctx context.Context) error {
	return c.call(ctx, http.MethodPost, PathReset, nil, nil)
}

// SetSession creates the session if needed and sets whether it is enabled.
func (c *AdminClient) SetSession(ctx context.Context, sessionID string, enabled bool) error {
	return c.call(ctx, http.MethodPut, PathSessions+sessionID, SessionSettings{Enabled: enabled}, nil)
}

// Healthy reports whether the server answers its health check.
func (c *AdminClient) Healthy(ctx context.Context) error {
	return c.call(ctx, http.MethodGet, PathHealthz, nil, nil)
}
