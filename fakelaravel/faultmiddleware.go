package fakelaravel

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"wagate/gateway/laravel"
)

// checkFaultsForUpstream refuses the item faults in front of a real app: they change how a batch
// is applied, which only the fake's own application can do.
func checkFaultsForUpstream(f Faults) error {
	for _, w := range f.Windows {
		if w.Kind == FaultRefuseItems || w.Kind == FaultUnaccountedFailures {
			return fmt.Errorf("faults: %s windows change how the fake applies a batch; in front of a real app (upstream) they cannot: %w", w.Kind, ErrUpstreamOnly)
		}
	}
	return nil
}

// countInjected records a request changed by a fault in Stats.Injected and /metrics.
func (s *Server) countInjected(kind FaultKind, detail string) {
	s.stats.Load().inject(InjectedKey(kind, detail))
	s.metrics.injectedFaults.WithLabelValues(string(kind), detail).Inc()
}

// laravelMessages are the messages Laravel's exception handler gives the statuses it answers
// itself; other statuses get their reason phrase.
var laravelMessages = map[int]string{
	http.StatusUnauthorized:        "Unauthenticated.",
	http.StatusForbidden:           "This action is unauthorized.",
	http.StatusNotFound:            "Not Found",
	419:                            "Page Expired",
	http.StatusTooManyRequests:     "Too Many Attempts.",
	http.StatusInternalServerError: "Server Error",
	http.StatusServiceUnavailable:  "Service Unavailable",
}

// statusMessage is the "message" of an injected answer with status.
func statusMessage(status int) string {
	if m, ok := laravelMessages[status]; ok {
		return m
	}
	if t := http.StatusText(status); t != "" {
		return t
	}
	return "Error " + strconv.Itoa(status)
}

// withFaults is the fault middleware around the application next, for a request to endpoint: a
// status window answers instead of it (nothing applied); latency windows hold the worker after
// it.
func (s *Server) withFaults(ctx context.Context, endpoint string, next func() *response) *response {
	if e := s.faults.drawStatus(time.Now(), endpoint); e != nil {
		book := s.stats.Load()
		book.count(&book.errs)
		s.metrics.injectedErrors.Inc()
		s.countInjected(FaultStatus, strconv.Itoa(e.status))
		resp := messageResponse(e.status, statusMessage(e.status))
		resp.header = e.header
		return resp
	}
	resp := next()
	if resp == nil {
		return nil
	}
	if d, hits := s.faults.drawLatency(time.Now(), endpoint); hits > 0 {
		s.countInjected(FaultLatency, "")
		sleepCtx(ctx, d)
	}
	return resp
}

// answerFaults applies the faults on the answer of an applied write to endpoint: it returns the
// lost-response mode when the answer is to be lost ("" otherwise), or replaces resp's body with
// an undecodable one.
func (s *Server) answerFaults(endpoint string, resp *response) (lostMode string) {
	now := time.Now()
	if lost, mode := s.faults.drawLost(now, endpoint); lost {
		book := s.stats.Load()
		book.count(&book.lost)
		s.metrics.lostResponses.Inc()
		s.countInjected(FaultLostResponse, mode)
		return mode
	}
	if s.faults.drawGarbage(now, endpoint) {
		s.countInjected(FaultGarbageBody, "")
		resp.body = garbled(resp.body)
	}
	return ""
}

// itemFaults splits the rows of a batch to endpoint into those to apply and those the item
// faults withhold (refused ones named, unaccounted ones only counted), with the refused items
// for Refusals.
func (s *Server) itemFaults(endpoint string, rows []versionedRow) ([]versionedRow, withheldItems, []RefusedItem) {
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.sessionID
	}
	fates := s.faults.planBatch(time.Now(), endpoint, ids)
	if fates == nil {
		return rows, withheldItems{}, nil
	}
	var apply []versionedRow
	var held withheldItems
	var refused []RefusedItem
	for i, r := range rows {
		switch fates[i] {
		case itemRefused:
			held.refused = append(held.refused, laravel.ItemError{SessionID: r.sessionID, Error: RefusedItemError})
			refused = append(refused, RefusedItem{SessionID: r.sessionID, Endpoint: endpoint, Version: r.version})
		case itemUnaccounted:
			held.unaccounted++
		default:
			apply = append(apply, r)
		}
	}
	return apply, held, refused
}

// recordWithheld counts the items of a committed batch that item faults withheld.
func (s *Server) recordWithheld(held withheldItems, refused []RefusedItem) {
	if len(refused) > 0 {
		s.countInjected(FaultRefuseItems, "")
		s.metrics.withheldItems.WithLabelValues(string(FaultRefuseItems)).Add(float64(len(refused)))
	}
	if held.unaccounted > 0 {
		s.countInjected(FaultUnaccountedFailures, "")
		s.metrics.withheldItems.WithLabelValues(string(FaultUnaccountedFailures)).Add(float64(held.unaccounted))
	}
	if len(refused) > 0 || held.unaccounted > 0 {
		s.stats.Load().withheld(refused, held.unaccounted)
	}
}

// refuseLegacyWrite answers a legacy write refused by a refuse_items window: a 422 naming
// session_id, nothing applied, recorded in Refusals (version 0: legacy writes have none). nil
// lets the write through.
func (s *Server) refuseLegacyWrite(kind batchKind, sessionID string) *response {
	endpoint := EndpointStatus
	if kind == kindQR {
		endpoint = EndpointQR
	}
	if !s.faults.drawRefusal(time.Now(), endpoint, sessionID) {
		return nil
	}
	s.recordWithheld(withheldItems{}, []RefusedItem{{SessionID: sessionID, Endpoint: endpoint}})
	resp := jsonResponse(http.StatusUnprocessableEntity, laravel.ValidationError{
		Message: validationMessage, Errors: map[string][]string{"session_id": {RefusedItemError}},
	})
	resp.items, resp.failed = 1, 1
	return resp
}

// Refusals returns every batch item refused by a refuse_items window since start (or the last
// reset).
func (s *Server) Refusals() Refusals { return s.stats.Load().refusalsSnapshot() }
