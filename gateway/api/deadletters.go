package api

// The dead-letter admin routes (batch mode): GET /dead-letters lists the outbox's dead letters,
// oldest first, in pages; POST /dead-letters/redrive re-appends them (all, or one session's, or
// those whose reason contains a text) to the outbox with their original event id and version.
// Both take the API's bearer token. In legacy mode there is no outbox: both answer 501.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"wagate/gateway/laravel"
	"wagate/gateway/outbox"
)

// DeadLetters is the dead-letter store behind the admin routes (*outbox.Outbox implements it).
type DeadLetters interface {
	ListDeadLetters(ctx context.Context, cursor string, limit int) ([]outbox.DeadLetter, string, error)
	RedriveDeadLetters(ctx context.Context, f outbox.RedriveFilter) (outbox.RedriveResult, error)
}

// DeadLetterMetrics is told what the dead-letter routes did (metrics.Metrics implements it).
type DeadLetterMetrics interface {
	// DeadLettersListed counts dead letters returned by GET /dead-letters.
	DeadLettersListed(n int)
	// DeadLettersRedriven counts dead letters re-appended by POST /dead-letters/redrive.
	DeadLettersRedriven(n int)
}

// redriveTimeout bounds one re-drive request (below the server's write timeout).
const redriveTimeout = 45 * time.Second

// deadLetterJSON is one dead letter as the API shows it.
type deadLetterJSON struct {
	ID        string    `json:"id"`
	OutboxID  string    `json:"outbox_id"`
	SessionID string    `json:"session_id"`
	Kind      string    `json:"kind"`
	Version   int64     `json:"version"`
	EventID   string    `json:"event_id"`
	Reason    string    `json:"reason"`
	Time      time.Time `json:"time"`
	EventTime time.Time `json:"event_time"`
	// Malformed marks a dead letter whose outbox entry could not be decoded: it holds no event
	// and cannot be re-driven.
	Malformed bool `json:"malformed,omitempty"`
}

type deadLetterPage struct {
	DeadLetters []deadLetterJSON `json:"dead_letters"`
	NextCursor  string           `json:"next_cursor"`
}

func deadLetterView(dl outbox.DeadLetter) deadLetterJSON {
	ev := dl.Event
	return deadLetterJSON{
		ID: dl.ID, OutboxID: dl.OutboxID, SessionID: ev.SessionID, Kind: string(ev.Kind), Version: ev.Version,
		EventID: ev.ID, Reason: dl.Reason, Time: dl.At.UTC(), EventTime: ev.Time.UTC(), Malformed: ev.ID == "",
	}
}

// deadLettersUnavailable answers a dead-letter route in legacy mode.
func deadLettersUnavailable(w http.ResponseWriter) {
	writeError(w, http.StatusNotImplemented, "dead_letters_unavailable",
		"dead letters exist only in batch delivery mode (WAGATE_MODE=batch); this gateway delivers in legacy mode")
}

func (a *api) listDeadLetters(w http.ResponseWriter, r *http.Request) {
	if a.cfg.DeadLetters == nil {
		deadLettersUnavailable(w)
		return
	}
	q := r.URL.Query()
	limit := outbox.DefaultDeadLetterPage
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > outbox.MaxDeadLetterPage {
			writeError(w, http.StatusBadRequest, "invalid_limit", fmt.Sprintf("limit must be an integer from 1 to %d", outbox.MaxDeadLetterPage))
			return
		}
		limit = n
	}
	after := q.Get("after")
	if !outbox.ValidCursor(after) {
		writeError(w, http.StatusBadRequest, "invalid_cursor", "after must be a dead-letter id from next_cursor")
		return
	}
	dls, next, err := a.cfg.DeadLetters.ListDeadLetters(r.Context(), after, limit)
	if err != nil {
		a.log.Error("listing dead letters failed", "err", err)
		writeError(w, http.StatusServiceUnavailable, "redis_unavailable", "could not read the dead letters from Redis")
		return
	}
	out := deadLetterPage{DeadLetters: make([]deadLetterJSON, 0, len(dls)), NextCursor: next}
	for _, dl := range dls {
		out.DeadLetters = append(out.DeadLetters, deadLetterView(dl))
	}
	if a.cfg.DeadLetterMetrics != nil {
		a.cfg.DeadLetterMetrics.DeadLettersListed(len(dls))
	}
	writeJSON(w, http.StatusOK, out)
}

// redriveRequest selects the dead letters to re-drive; {} selects all. Pointers tell an absent
// field from an empty one (an empty filter is refused rather than read as "all").
type redriveRequest struct {
	SessionID      *string `json:"session_id"`
	ReasonContains *string `json:"reason_contains"`
	Limit          *int    `json:"limit"`
}

type redriveFailure struct {
	Error  errorDetail          `json:"error"`
	Result outbox.RedriveResult `json:"result"`
}

func (a *api) redriveDeadLetters(w http.ResponseWriter, r *http.Request) {
	if a.cfg.DeadLetters == nil {
		deadLettersUnavailable(w)
		return
	}
	var req redriveRequest
	if !a.readStrictJSON(w, r, &req) {
		return
	}
	var f outbox.RedriveFilter
	if req.SessionID != nil {
		if !laravel.ValidSessionID(*req.SessionID) {
			writeError(w, http.StatusBadRequest, "invalid_session_id", "session_id must match ^[A-Za-z0-9_-]{1,64}$")
			return
		}
		f.SessionID = *req.SessionID
	}
	if req.ReasonContains != nil {
		if n := len(*req.ReasonContains); n < 1 || n > 256 {
			writeError(w, http.StatusBadRequest, "invalid_reason_filter", "reason_contains must be 1 to 256 bytes (leave it out to match every reason)")
			return
		}
		f.ReasonContains = *req.ReasonContains
	}
	if req.Limit != nil {
		if *req.Limit < 1 || *req.Limit > outbox.MaxRedrive {
			writeError(w, http.StatusBadRequest, "invalid_limit", fmt.Sprintf("limit must be an integer from 1 to %d", outbox.MaxRedrive))
			return
		}
		f.Limit = *req.Limit
	}
	ctx, cancel := context.WithTimeout(r.Context(), redriveTimeout)
	defer cancel()
	res, err := a.cfg.DeadLetters.RedriveDeadLetters(ctx, f)
	if a.cfg.DeadLetterMetrics != nil && res.Redriven > 0 {
		a.cfg.DeadLetterMetrics.DeadLettersRedriven(res.Redriven)
	}
	if err != nil {
		a.log.Error("re-driving dead letters failed", "err", err, "redriven", res.Redriven)
		code, msg := "redis_unavailable", "the re-drive stopped on a Redis error"
		if errors.Is(err, outbox.ErrFull) {
			code, msg = "outbox_full", "the outbox is full; the re-drive stopped"
		}
		msg += fmt.Sprintf(" after re-driving %d dead letters; the others stay dead-lettered, try again later", res.Redriven)
		writeJSON(w, http.StatusServiceUnavailable, redriveFailure{Error: errorDetail{Code: code, Message: msg}, Result: res})
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// readStrictJSON is readJSON refusing unknown fields: a misspelt filter must not re-drive
// everything.
func (a *api) readStrictJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("request body is over %d bytes", MaxBodyBytes))
		} else {
			writeError(w, http.StatusBadRequest, "request_cancelled", "request cancelled")
		}
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if trimmed := bytes.TrimSpace(raw); len(trimmed) > 0 && trimmed[0] != '{' {
		err = errors.New("not a JSON object") // null, [], "x" or 1 must not read as {}
	} else {
		err = dec.Decode(v)
	}
	if err == nil {
		var extra json.RawMessage
		if dec.Decode(&extra) != io.EOF {
			err = errors.New("more than one JSON value")
		}
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_json", "request body must be one JSON object with only session_id, reason_contains and limit ({} re-drives everything): "+jsonProblem(err))
		return false
	}
	return true
}
