package conform

import (
	"context"
	"fmt"
	"net/http"

	"wagate/gateway/laravel"
)

// checkEveryItemAccounted sends a batch of three items (a newer version of a known session, an
// older one of another, and a session the target has never seen, which it may create or refuse
// item by item) and checks that the 2xx accounts for each: updated + stale + failed equals the
// items sent, every failed item has exactly one errors entry naming a session of the batch, and
// the lookups agree (a named item was not applied; the others were applied or stale, as counted).
// The gateway acknowledges only what an answer accounts for, so an answer that counts a failure
// without naming it makes it send the items again.
func (r *runner) checkEveryItemAccounted(ctx context.Context) error {
	known, older, fresh, v := r.sid(), r.sid(), r.sid(), r.version()
	if _, res, err := r.postStatuses(ctx, r.key(), r.statusItem(known, laravel.StatusPending, v), r.statusItem(older, laravel.StatusConnected, v+5)); err != nil {
		return fmt.Errorf("first batch: %w", err)
	} else if res.Updated+res.Stale+res.Failed != 2 {
		return fmt.Errorf("first batch: updated %d + stale %d + failed %d is not the 2 items sent", res.Updated, res.Stale, res.Failed)
	}
	items := []laravel.StatusItem{
		r.statusItem(known, laravel.StatusConnected, v+1),
		r.statusItem(older, laravel.StatusDisconnected, v+3), // older than stored: stale
		r.statusItem(fresh, laravel.StatusPending, v+1),      // unknown: created, or refused by name
	}
	_, res, err := r.postStatuses(ctx, r.key(), items...)
	if err != nil {
		return err
	}
	if sum := res.Updated + res.Stale + res.Failed; sum != len(items) {
		return fmt.Errorf("updated %d + stale %d + failed %d = %d; want the %d items sent", res.Updated, res.Stale, res.Failed, sum, len(items))
	}
	if len(res.Errors) != res.Failed {
		return fmt.Errorf("failed is %d but errors has %d entries; want one entry per failed item", res.Failed, len(res.Errors))
	}
	if res.Success != (res.Failed == 0) {
		return fmt.Errorf("success %v with failed %d", res.Success, res.Failed)
	}
	named := map[string]bool{}
	for _, e := range res.Errors {
		if named[e.SessionID] {
			return fmt.Errorf("errors names %s twice", e.SessionID)
		}
		named[e.SessionID] = true
		if e.SessionID != known && e.SessionID != older && e.SessionID != fresh {
			return fmt.Errorf("errors names %q, which is not in the batch", e.SessionID)
		}
		if e.Error == "" {
			return fmt.Errorf("errors entry for %s has no error", e.SessionID)
		}
	}
	updated, stale := 0, 0
	for _, it := range items {
		info, a, err := r.lookup(ctx, it.SessionID)
		if err != nil {
			return fmt.Errorf("lookup %s: %w", it.SessionID, err)
		}
		if a.status != http.StatusOK && a.status != http.StatusNotFound {
			return fmt.Errorf("lookup %s: HTTP %d", it.SessionID, a.status)
		}
		applied := a.status == http.StatusOK && info.StatusVersion == it.Version && info.EstadoQR == it.EstadoQR
		switch {
		case named[it.SessionID] && applied:
			return fmt.Errorf("%s is named in errors but was applied", it.SessionID)
		case named[it.SessionID]:
		case applied:
			updated++
		case a.status == http.StatusNotFound:
			return fmt.Errorf("%s is neither named in errors nor stored", it.SessionID)
		default:
			stale++
		}
	}
	if updated != res.Updated || stale != res.Stale {
		return fmt.Errorf("the lookups show %d applied and %d stale; the answer counts updated %d, stale %d", updated, stale, res.Updated, res.Stale)
	}
	return nil
}
