package conform

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"wagate/gateway/cluster"
	"wagate/gateway/laravel"
)

// lateEpochCheck names the fencing check (tests refer to it).
const lateEpochCheck = "fencing: a late batch of an older epoch is stale even with higher sequence numbers (versions are BIGINT fencing tokens)"

// checkLateOlderEpoch: in cluster mode a session's versions are fencing tokens, epoch*1e6 + seq
// (cluster.Version), with epochs near Unix seconds, so they need 64 bits. When a replica takes a
// session over it writes at a higher epoch; the replica it replaced (paused, cut off from Redis)
// may still deliver a batch it built before, with higher sequence numbers but the older epoch.
// Laravel must count those items stale and apply none of them, statuses and QR codes alike.
func (r *runner) checkLateOlderEpoch(ctx context.Context) error {
	sid := r.sid()
	oldEpoch := time.Now().Unix() + r.version() // above any epoch an earlier run used for this target
	newEpoch := oldEpoch + 3

	// The old holder's writes before the takeover are applied.
	if _, res, err := r.postStatuses(ctx, r.key(), r.statusItem(sid, laravel.StatusConnected, cluster.Version(oldEpoch, 41))); err != nil {
		return err
	} else if err := counts(res, 1, 0, 0); err != nil {
		return fmt.Errorf("the old epoch's first status: %w", err)
	}
	if res, err := r.postQRs(ctx, r.qrItem(sid, "2@old", cluster.Version(oldEpoch, 42))); err != nil {
		return err
	} else if err := counts(res, 1, 0, 0); err != nil {
		return fmt.Errorf("the old epoch's first QR: %w", err)
	}
	// The new holder's first writes, sequence 1 and 2 of the new epoch.
	newStatus, newQR := cluster.Version(newEpoch, 1), cluster.Version(newEpoch, 2)
	if _, res, err := r.postStatuses(ctx, r.key(), r.statusItem(sid, laravel.StatusDisconnected, newStatus)); err != nil {
		return err
	} else if err := counts(res, 1, 0, 0); err != nil {
		return fmt.Errorf("the new epoch's first status (version %d over %d): %w", newStatus, cluster.Version(oldEpoch, 41), err)
	}
	if res, err := r.postQRs(ctx, r.qrItem(sid, "2@new", newQR)); err != nil {
		return err
	} else if err := counts(res, 1, 0, 0); err != nil {
		return fmt.Errorf("the new epoch's first QR: %w", err)
	}
	// The old holder's late batch: its last sequence numbers, far above the new epoch's.
	late := cluster.Version(oldEpoch, cluster.VersionsPerEpoch-1)
	if _, res, err := r.postStatuses(ctx, r.key(), r.statusItem(sid, laravel.StatusConnected, late-1), r.statusItem(sid, laravel.StatusLoggedOut, late)); err != nil {
		return err
	} else if err := counts(res, 0, 2, 0); err != nil {
		return fmt.Errorf("the old epoch's late statuses: %w", err)
	}
	if res, err := r.postQRs(ctx, r.qrItem(sid, "2@late", late)); err != nil {
		return err
	} else if err := counts(res, 0, 1, 0); err != nil {
		return fmt.Errorf("the old epoch's late QR: %w", err)
	}
	info, _, err := r.lookup(ctx, sid)
	if err != nil {
		return err
	}
	if info.EstadoQR != laravel.StatusDisconnected || info.StatusVersion != newStatus || info.QRVersion != newQR || info.QR == "2@late" {
		return fmt.Errorf("the lookup shows %s status version %d, QR %q version %d; want the new epoch's disconnected %d and QR version %d",
			info.EstadoQR, info.StatusVersion, info.QR, info.QRVersion, newStatus, newQR)
	}
	return nil
}

func (r *runner) qrItem(sid, qr string, v int64) laravel.QRItem {
	return laravel.QRItem{SessionID: sid, QR: qr, Version: v, EventID: fmt.Sprintf("%s-qr-%d", sid, v), GeneratedAt: time.Now().UTC()}
}

func (r *runner) postQRs(ctx context.Context, items ...laravel.QRItem) (laravel.BatchResult, error) {
	a, err := r.send(ctx, http.MethodPost, laravel.PathQRBatch, mustJSON(laravel.QRBatch{QRs: items}), sendOpts{key: r.key()})
	if err != nil {
		return laravel.BatchResult{}, err
	}
	var res laravel.BatchResult
	return res, a.expect(http.StatusOK, &res)
}
