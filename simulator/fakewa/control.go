package fakewa

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.mau.fi/whatsmeow/types"
)

// PairRequest is the body of POST /pair.
type PairRequest struct {
	QR    string `json:"qr"`
	Phone string `json:"phone"`
}

// PairResponse is the answer of POST /pair.
type PairResponse struct {
	JID string `json:"jid"`
}

// Info is the answer of GET /info: what a client needs to reach this server.
type Info struct {
	Addr          string `json:"addr"`
	RootPublicKey string `json:"root_public_key"`
}

// FailNextConnectRequest is the body of POST /devices/{jid}/fail-next-connect.
type FailNextConnectRequest struct {
	Reason int `json:"reason"`
}

// KeepaliveSilenceRequest is the body of POST /devices/{jid}/keepalive-silence.
type KeepaliveSilenceRequest struct {
	Silent bool `json:"silent"`
}

// SendMessageResponse is the answer of POST /devices/{jid}/messages.
type SendMessageResponse struct {
	ID string `json:"id"`
}

// RestartRequest is the optional body of POST /restart.
type RestartRequest struct {
	// Downtime (a Go duration, e.g. "5s") refuses new connections with HTTP 503 after the restart.
	Downtime string `json:"downtime,omitempty"`
}

// UnreachableRequest is the body of POST /unreachable.
type UnreachableRequest struct {
	// Devices are the devices the outage covers (JIDs); none: every connection.
	Devices []string `json:"devices,omitempty"`
	// For is the outage's length (a Go duration, e.g. "5s").
	For string `json:"for"`
}

// UnreachableResponse is the answer of POST /unreachable.
type UnreachableResponse struct {
	// Cut is how many connections the outage cut.
	Cut int `json:"cut"`
}

// CutHandshakesRequest is the body of POST /handshakes/cut.
type CutHandshakesRequest struct {
	// For is how long handshakes are cut (a Go duration, e.g. "2s").
	For string `json:"for"`
}

// SilenceRequest is the body of POST /silence.
type SilenceRequest struct {
	// Devices are the devices the silence covers (JIDs); none: the whole server.
	Devices []string `json:"devices,omitempty"`
	// For is the silence's length (a Go duration, e.g. "5s").
	For string `json:"for"`
}

// SilenceResponse is the answer of POST /silence.
type SilenceResponse struct {
	// Silenced is how many open connections went silent.
	Silenced int `json:"silenced"`
}

func cmpOr(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}

type errorBody struct {
	Error string `json:"error"`
}

// maxControlBody bounds control request bodies.
const maxControlBody = 64 << 10

// ControlHandler returns the JSON control API of the standalone mode:
//
//	GET  /info                              {"addr", "root_public_key"}
//	GET  /devices                           [DeviceInfo...] sorted by JID
//	POST /pair {"qr","phone"}               {"jid"}
//	POST /devices/{jid}/drop                network drop
//	POST /devices/{jid}/replace             stream replaced
//	POST /devices/{jid}/logout              device removed (401)
//	POST /devices/{jid}/logout-on-connect   removed, refused at the next connect
//	POST /devices/{jid}/fail-next-connect   {"reason": 401|402|405|503|...}
//	POST /devices/{jid}/keepalive-silence   {"silent": true|false}
//	POST /devices/{jid}/receipts            {"delivered_after":"1s","read_after":"5s"|"never"} or
//	                                        {"reset":true}: when the device's messages get receipts
//	POST /devices/{jid}/messages            PhoneMessage {"from","text","quote","react_to","media"}:
//	                                        a contact's phone writes to the device; {"id"}
//	POST /restart [{"downtime": "5s"}]      stream:error 503 to every connection, then refuse
//	                                        new ones with HTTP 503 for the downtime
//	POST /unreachable {"devices":[JID...],"for":"5s"}
//	                                        an outage: the devices' connections (none listed:
//	                                        every connection) cut, new ones refused; {"cut"}
//	POST /reachable                         ends every outage now
//	POST /silence {"devices":[JID...],"for":"5s"}
//	                                        a silence: the devices' connections (none listed:
//	                                        every connection, and new dials held) kept open,
//	                                        neither read nor answered; {"silenced"}
//	POST /silence/end                       ends every silence now
//	POST /handshakes/cut {"for":"2s"}       every new connection closed after the client's
//	                                        hello, before the server's, for that long
//	GET  /events?since=SEQ&jid=JID          [Event...], both filters optional
//	                                        (X-Events-Discarded: count lost to the bound)
//	GET  /stats                             Stats
//
// Actions answer 204; errors answer {"error": "..."} with 400, 404, 409, 429, 502 or 504.
func (s *Server) ControlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /info", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, Info{Addr: s.Addr(), RootPublicKey: hex.EncodeToString(s.RootPublicKey())})
	})
	mux.HandleFunc("GET /devices", func(w http.ResponseWriter, r *http.Request) {
		devices := s.Devices()
		slices.SortFunc(devices, func(a, b DeviceInfo) int { return strings.Compare(a.JID, b.JID) })
		writeJSON(w, http.StatusOK, devices)
	})
	mux.HandleFunc("POST /pair", func(w http.ResponseWriter, r *http.Request) {
		var req PairRequest
		if !readJSON(w, r, &req) {
			return
		}
		jid, err := s.Pair(r.Context(), req.QR, req.Phone)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, PairResponse{JID: jid.String()})
	})
	deviceAction := func(action func(types.JID, *http.Request) error) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			jid, err := types.ParseJID(r.PathValue("jid"))
			if err != nil {
				writeJSON(w, http.StatusBadRequest, errorBody{Error: "bad jid: " + err.Error()})
				return
			}
			if err := action(jid, r); err != nil {
				writeError(w, err)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		}
	}
	mux.HandleFunc("POST /devices/{jid}/drop", deviceAction(func(j types.JID, _ *http.Request) error { return s.Drop(j) }))
	mux.HandleFunc("POST /devices/{jid}/replace", deviceAction(func(j types.JID, _ *http.Request) error { return s.Replace(j) }))
	mux.HandleFunc("POST /devices/{jid}/logout", deviceAction(func(j types.JID, _ *http.Request) error { return s.Logout(j) }))
	mux.HandleFunc("POST /devices/{jid}/logout-on-connect", deviceAction(func(j types.JID, _ *http.Request) error { return s.LogoutOnConnect(j) }))
	mux.HandleFunc("POST /devices/{jid}/fail-next-connect", func(w http.ResponseWriter, r *http.Request) {
		var req FailNextConnectRequest
		if !readJSON(w, r, &req) {
			return
		}
		if req.Reason <= 0 {
			writeJSON(w, http.StatusBadRequest, errorBody{Error: "reason must be a positive failure code"})
			return
		}
		deviceAction(func(j types.JID, _ *http.Request) error { return s.FailNextConnect(j, req.Reason) })(w, r)
	})
	mux.HandleFunc("POST /devices/{jid}/keepalive-silence", func(w http.ResponseWriter, r *http.Request) {
		var req KeepaliveSilenceRequest
		if !readJSON(w, r, &req) {
			return
		}
		deviceAction(func(j types.JID, _ *http.Request) error { return s.SetKeepaliveSilence(j, req.Silent) })(w, r)
	})
	mux.HandleFunc("POST /devices/{jid}/receipts", func(w http.ResponseWriter, r *http.Request) {
		var req ReceiptScheduleRequest
		if !readJSON(w, r, &req) {
			return
		}
		sched, err := req.parse()
		if err != nil {
			writeError(w, err)
			return
		}
		deviceAction(func(j types.JID, _ *http.Request) error { return s.SetReceiptSchedule(j, sched) })(w, r)
	})
	mux.HandleFunc("POST /devices/{jid}/messages", func(w http.ResponseWriter, r *http.Request) {
		jid, err := types.ParseJID(r.PathValue("jid"))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, errorBody{Error: "bad jid: " + err.Error()})
			return
		}
		var req PhoneMessage
		if !readJSON(w, r, &req) {
			return
		}
		id, err := s.SendMessage(r.Context(), jid, req)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, SendMessageResponse{ID: id})
	})
	mux.HandleFunc("POST /restart", func(w http.ResponseWriter, r *http.Request) {
		var req RestartRequest
		if r.ContentLength != 0 && !readJSON(w, r, &req) {
			return
		}
		downtime, err := time.ParseDuration(cmpOr(req.Downtime, "0s"))
		if err != nil || downtime < 0 {
			writeJSON(w, http.StatusBadRequest, errorBody{Error: "downtime must be a duration like 5s"})
			return
		}
		if err := s.RestartWithDowntime(downtime); err != nil {
			writeError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /unreachable", func(w http.ResponseWriter, r *http.Request) {
		var req UnreachableRequest
		if !readJSON(w, r, &req) {
			return
		}
		jids, d, ok := devicesFor(w, req.Devices, req.For)
		if !ok {
			return
		}
		cut, err := s.Unreachable(jids, d)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, UnreachableResponse{Cut: cut})
	})
	mux.HandleFunc("POST /reachable", func(w http.ResponseWriter, r *http.Request) {
		s.Reachable()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /handshakes/cut", func(w http.ResponseWriter, r *http.Request) {
		var req CutHandshakesRequest
		if !readJSON(w, r, &req) {
			return
		}
		_, d, ok := devicesFor(w, nil, req.For)
		if !ok {
			return
		}
		if err := s.CutHandshakes(d); err != nil {
			writeError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /silence", func(w http.ResponseWriter, r *http.Request) {
		var req SilenceRequest
		if !readJSON(w, r, &req) {
			return
		}
		jids, d, ok := devicesFor(w, req.Devices, req.For)
		if !ok {
			return
		}
		n, err := s.Silence(jids, d)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, SilenceResponse{Silenced: n})
	})
	mux.HandleFunc("POST /silence/end", func(w http.ResponseWriter, r *http.Request) {
		s.EndSilence()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		var since uint64
		if v := r.URL.Query().Get("since"); v != "" {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				writeJSON(w, http.StatusBadRequest, errorBody{Error: "since must be an event sequence number"})
				return
			}
			since = n
		}
		events, discarded, _ := s.events.since(since)
		if jid := r.URL.Query().Get("jid"); jid != "" {
			events = slices.DeleteFunc(events, func(e Event) bool { return e.JID != jid })
		}
		w.Header().Set("X-Events-Discarded", strconv.FormatUint(discarded, 10))
		writeJSON(w, http.StatusOK, events)
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Stats())
	})
	return mux
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxControlBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "bad request body: " + err.Error()})
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		_ = err // the client went away; nothing left to tell it
	}
}

// errorStatus maps the control API's errors to HTTP statuses.
func errorStatus(err error) int {
	switch {
	case errors.Is(err, ErrBadQR), errors.Is(err, ErrBadPhone), errors.Is(err, ErrBadMessage):
		return http.StatusBadRequest
	case errors.Is(err, ErrOutboxFull):
		return http.StatusTooManyRequests
	case errors.Is(err, ErrUnknownDevice), errors.Is(err, ErrUnknownRef):
		return http.StatusNotFound
	case errors.Is(err, ErrNotConnected), errors.Is(err, ErrLoggedOut), errors.Is(err, ErrQRMismatch),
		errors.Is(err, ErrPairInProgress), errors.Is(err, ErrNotStarted), errors.Is(err, ErrClosed),
		errors.Is(err, ErrNoDeviceKeys):
		return http.StatusConflict
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return http.StatusGatewayTimeout
	default:
		return http.StatusBadGateway
	}
}

func writeError(w http.ResponseWriter, err error) {
	writeJSON(w, errorStatus(err), errorBody{Error: err.Error()})
}

// ControlError is an error answer of the control API.
type ControlError struct {
	Status  int
	Message string
}

func (e *ControlError) Error() string {
	return fmt.Sprintf("fakewa control: HTTP %d: %s", e.Status, e.Message)
}

// devicesFor parses the devices and the length of an outage or a silence (POST /unreachable,
// POST /silence); on a bad one it answers 400 and returns false.
func devicesFor(w http.ResponseWriter, devices []string, length string) ([]types.JID, time.Duration, bool) {
	d, err := time.ParseDuration(length)
	if err != nil || d <= 0 {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "for must be a positive duration like 5s"})
		return nil, 0, false
	}
	jids := make([]types.JID, 0, len(devices))
	for _, v := range devices {
		jid, err := types.ParseJID(v)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, errorBody{Error: "bad jid: " + err.Error()})
			return nil, 0, false
		}
		jids = append(jids, jid)
	}
	return jids, d, true
}
