package fakelaravel

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"wagate/gateway/laravel"
)

// Admin API paths under /_fake/. Every one but PathHealthz needs the admin bearer token.
const (
	PathHealthz  = "/_fake/healthz"   // GET: {"status":"ok"}, no token
	PathStats    = "/_fake/stats"     // GET: Stats; ?series_seconds=N keeps only the last N seconds of series
	PathState    = "/_fake/state"     // GET: State; ?since=N: StateChanges, the sessions changed after cursor N
	PathFaults   = "/_fake/faults"    // GET: Faults; PUT/POST Faults: replace them
	PathReset    = "/_fake/reset"     // POST: delete every session and batch, restart stats
	PathRefusals = "/_fake/refusals"  // GET: Refusals, the items refused by refuse_items windows
	PathSessions = "/_fake/sessions/" // PUT + {id} with SessionSettings: create or enable/disable
)

// SessionSettings is the body of PUT /_fake/sessions/{id}.
type SessionSettings struct {
	Enabled bool `json:"enabled"`
}

func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == PathHealthz {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"}, nil)
		return
	}
	if !authorized(r.Header.Get("Authorization"), s.adminSum) {
		writeJSON(w, http.StatusUnauthorized, laravel.ErrorBody{Message: "Unauthenticated."}, nil)
		return
	}
	ctx := r.Context()
	switch {
	case r.URL.Path == PathStats && r.Method == http.MethodGet:
		seconds := -1
		if v := r.URL.Query().Get("series_seconds"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				writeJSON(w, http.StatusUnprocessableEntity, laravel.ErrorBody{Message: "series_seconds must be a non-negative integer"}, nil)
				return
			}
			seconds = n
		}
		writeJSON(w, http.StatusOK, s.StatsRecent(seconds), nil)
	case r.URL.Path == PathState && r.Method == http.MethodGet && r.URL.Query().Has("since"):
		since, err := strconv.ParseInt(r.URL.Query().Get("since"), 10, 64)
		if err != nil || since < 0 {
			writeJSON(w, http.StatusUnprocessableEntity, laravel.ErrorBody{Message: "since must be a non-negative integer (a cursor of a previous answer, or 0)"}, nil)
			return
		}
		st, err := s.StateSince(ctx, since)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, laravel.ErrorBody{Message: err.Error()}, nil)
			return
		}
		writeJSON(w, http.StatusOK, st, nil)
	case r.URL.Path == PathState && r.Method == http.MethodGet:
		st, err := s.State(ctx)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, laravel.ErrorBody{Message: err.Error()}, nil)
			return
		}
		writeJSON(w, http.StatusOK, st, nil)
	case r.URL.Path == PathMessages && r.Method == http.MethodGet:
		s.serveMessagesAdmin(w, r)
	case r.URL.Path == PathRefusals && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, s.Refusals(), nil)
	case r.URL.Path == PathFaults && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, s.Faults(), nil)
	case r.URL.Path == PathFaults && (r.Method == http.MethodPut || r.Method == http.MethodPost):
		var f Faults
		if err := decodeAdmin(r, &f); err != nil {
			writeJSON(w, http.StatusUnprocessableEntity, laravel.ErrorBody{Message: err.Error()}, nil)
			return
		}
		if err := s.SetFaults(f); err != nil {
			writeJSON(w, http.StatusUnprocessableEntity, laravel.ErrorBody{Message: err.Error()}, nil)
			return
		}
		writeJSON(w, http.StatusOK, s.Faults(), nil)
	case s.upstream != nil && (r.URL.Path == PathReset || strings.HasPrefix(r.URL.Path, PathSessions)):
		writeJSON(w, http.StatusNotImplemented, laravel.ErrorBody{Message: r.URL.Path + ": " + ErrUpstreamOnly.Error()}, nil)
	case r.URL.Path == PathReset && r.Method == http.MethodPost:
		if err := s.Reset(ctx); err != nil {
			writeJSON(w, http.StatusInternalServerError, laravel.ErrorBody{Message: err.Error()}, nil)
			return
		}
		writeJSON(w, http.StatusOK, map[string]bool{"success": true}, nil)
	case strings.HasPrefix(r.URL.Path, PathSessions) && r.Method == http.MethodPut:
		id := strings.TrimPrefix(r.URL.Path, PathSessions)
		if !laravel.ValidSessionID(id) {
			writeJSON(w, http.StatusNotFound, laravel.ErrorBody{Message: "Invalid session id."}, nil)
			return
		}
		var set SessionSettings
		if err := decodeAdmin(r, &set); err != nil {
			writeJSON(w, http.StatusUnprocessableEntity, laravel.ErrorBody{Message: err.Error()}, nil)
			return
		}
		if err := s.store.setEnabled(ctx, id, set.Enabled, time.Now()); err != nil {
			writeJSON(w, http.StatusInternalServerError, laravel.ErrorBody{Message: err.Error()}, nil)
			return
		}
		writeJSON(w, http.StatusOK, map[string]bool{"success": true}, nil)
	default:
		writeJSON(w, http.StatusNotFound, laravel.ErrorBody{Message: "Not Found"}, nil)
	}
}

func decodeAdmin(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid body: %w", err)
	}
	return nil
}
