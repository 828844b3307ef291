package conform

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"wagate/gateway/laravel"
)

type check struct {
	name        string
	needsSecret bool
	run         func(ctx context.Context) error
}

func (r *runner) checks() []check {
	return []check{
		{name: "auth: a request without a token is 401", run: r.checkNoToken},
		{name: "auth: a wrong token is 401 on every endpoint", run: r.checkWrongToken},
		{name: "legacy: POST /api/whatsapp/status answers {success:true} and the lookup shows it", run: r.checkLegacyStatus},
		{name: "legacy: POST /api/qr stores the code", run: r.checkLegacyQR},
		{name: "lookup: an unknown session is 404 with a message", run: r.checkUnknownSession},
		{name: "batch: a status batch answers {success, updated, failed, stale, errors[]}", run: r.checkBatchShape},
		{name: "batch: stale and equal versions are ignored, counted and not applied", run: r.checkStale},
		{name: "batch: a QR batch applies only newer versions", run: r.checkQRStale},
		{name: "batch: a 2xx accounts for every item (updated + stale + failed = items, one errors entry per failed item)", run: r.checkEveryItemAccounted},
		{name: lateEpochCheck, run: r.checkLateOlderEpoch},
		{name: "idempotency: a replayed key returns the stored response and applies nothing", run: r.checkReplay},
		{name: "idempotency: a reused key with a different body is 422", run: r.checkKeyReuse},
		{name: "idempotency: a batch without Idempotency-Key is 422", run: r.checkKeyMissing},
		{name: "validation: an unknown estado_qr is 422 naming statuses.1.estado_qr and applies nothing", run: r.checkInvalidAppliesNothing},
		{name: "validation: a wrong type is 422 naming statuses.0.version", run: r.checkWrongType},
		{name: "validation: a missing field is 422 naming qrs.0.qr", run: r.checkMissingField},
		{name: "validation: malformed JSON is 422", run: r.checkMalformed},
		{name: "validation: more than 500 items is 422 naming statuses", run: r.checkTooMany},
		{name: "validation: a legacy status with an unknown estado_qr is 422 naming estado_qr", run: r.checkLegacyInvalid},
		{name: "limits: a body over 1 MiB is 413", run: r.checkTooLarge},
		{name: "signature: a POST without a signature is 401", needsSecret: true, run: r.checkSignatureMissing},
		{name: "signature: a wrong or stale signature is 401 and applies nothing", needsSecret: true, run: r.checkSignatureWrong},
		{name: "signature v2: a batch signed with v2 only is accepted", needsSecret: true, run: r.checkSignatureV2},
		{name: "signature v2: a request signed for another path is 401 and applies nothing", needsSecret: true, run: r.checkSignatureV2OtherPath},
		{name: "signature v2: a replayed request is 401 and applies nothing", needsSecret: true, run: r.checkSignatureV2Replay},
		{name: r.v1CheckName(), needsSecret: true, run: r.checkSignatureV1Migration},
	}
}

func (r *runner) checkNoToken(ctx context.Context) error {
	none := ""
	body := mustJSON(laravel.StatusBatch{Statuses: []laravel.StatusItem{r.statusItem(r.sid(), laravel.StatusConnected, r.version())}})
	a, err := r.send(ctx, http.MethodPost, laravel.PathStatusBatch, body, sendOpts{token: &none, key: r.key()})
	if err != nil {
		return err
	}
	return a.expect(http.StatusUnauthorized, nil)
}

func (r *runner) checkWrongToken(ctx context.Context) error {
	wrong := r.opts.Token + "-wrong"
	sid := r.sid()
	reqs := []struct {
		method, path string
		body         []byte
	}{
		{http.MethodPost, laravel.PathStatusBatch, mustJSON(laravel.StatusBatch{Statuses: []laravel.StatusItem{r.statusItem(sid, laravel.StatusConnected, r.version())}})},
		{http.MethodPost, laravel.PathQRBatch, mustJSON(laravel.QRBatch{QRs: []laravel.QRItem{{SessionID: sid, QR: "2@x", Version: r.version(), EventID: "e", GeneratedAt: time.Now().UTC()}}})},
		{http.MethodPost, laravel.PathStatus, mustJSON(laravel.StatusUpdate{SessionID: sid, EstadoQR: laravel.StatusConnected})},
		{http.MethodPost, laravel.PathQR, mustJSON(laravel.QRUpdate{SessionID: sid, QR: "2@x"})},
		{http.MethodGet, laravel.PathSessionPrefix + sid, nil},
	}
	for _, q := range reqs {
		a, err := r.send(ctx, q.method, q.path, q.body, sendOpts{token: &wrong, key: r.key()})
		if err != nil {
			return err
		}
		if err := a.expect(http.StatusUnauthorized, nil); err != nil {
			return fmt.Errorf("%s %s: %w", q.method, q.path, err)
		}
	}
	if _, a, err := r.lookup(ctx, sid); err != nil || a.status != http.StatusNotFound {
		return fmt.Errorf("a request with a wrong token changed the session (lookup status %d, %v)", a.status, err)
	}
	return nil
}

func (r *runner) checkLegacyStatus(ctx context.Context) error {
	sid := r.sid()
	a, err := r.send(ctx, http.MethodPost, laravel.PathStatus, mustJSON(laravel.StatusUpdate{SessionID: sid, EstadoQR: laravel.StatusConnected}), sendOpts{})
	if err != nil {
		return err
	}
	var ack laravel.Ack
	if err := a.expect(http.StatusOK, &ack); err != nil {
		return err
	}
	if !ack.Success {
		return fmt.Errorf("success is false: %s", snippet(a.body))
	}
	info, la, err := r.lookup(ctx, sid)
	if err != nil {
		return err
	}
	if err := la.expect(http.StatusOK, nil); err != nil {
		return fmt.Errorf("lookup: %w", err)
	}
	if info.SessionID != sid || info.EstadoQR != laravel.StatusConnected || info.Active != info.Enabled {
		return fmt.Errorf("lookup shows %+v, want %s connected and active when enabled", info, sid)
	}
	return nil
}

func (r *runner) checkLegacyQR(ctx context.Context) error {
	sid := r.sid()
	code := "2@" + sid + ",conform"
	a, err := r.send(ctx, http.MethodPost, laravel.PathQR, mustJSON(laravel.QRUpdate{SessionID: sid, QR: code}), sendOpts{})
	if err != nil {
		return err
	}
	if err := a.expect(http.StatusOK, nil); err != nil {
		return err
	}
	info, la, err := r.lookup(ctx, sid)
	if err != nil {
		return err
	}
	if la.status != http.StatusOK || info.QR != code {
		return fmt.Errorf("lookup status %d qr %q, want 200 and %q", la.status, info.QR, code)
	}
	return nil
}

func (r *runner) checkUnknownSession(ctx context.Context) error {
	_, a, err := r.lookup(ctx, r.sid()+"-never")
	if err != nil {
		return err
	}
	return a.expect(http.StatusNotFound, nil)
}

func (r *runner) checkBatchShape(ctx context.Context) error {
	v := r.version()
	a, res, err := r.postStatuses(ctx, r.key(), r.statusItem(r.sid(), laravel.StatusPending, v), r.statusItem(r.sid(), laravel.StatusConnected, v))
	if err != nil {
		return err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(a.body, &raw); err != nil {
		return err
	}
	for _, k := range []string{"success", "updated", "failed", "stale", "errors"} {
		if _, ok := raw[k]; !ok {
			return fmt.Errorf("answer lacks %q: %s", k, snippet(a.body))
		}
	}
	if !bytes.HasPrefix(bytes.TrimSpace(raw["errors"]), []byte("[")) {
		return fmt.Errorf("errors is not an array: %s", raw["errors"])
	}
	return counts(res, 2, 0, 0)
}

func (r *runner) checkStale(ctx context.Context) error {
	sid, v := r.sid(), r.version()
	if _, res, err := r.postStatuses(ctx, r.key(), r.statusItem(sid, laravel.StatusConnected, v+5)); err != nil {
		return err
	} else if err := counts(res, 1, 0, 0); err != nil {
		return fmt.Errorf("first batch: %w", err)
	}
	_, res, err := r.postStatuses(ctx, r.key(), r.statusItem(sid, laravel.StatusDisconnected, v+3), r.statusItem(sid, laravel.StatusLoggedOut, v+5))
	if err != nil {
		return err
	}
	if err := counts(res, 0, 2, 0); err != nil {
		return fmt.Errorf("older and equal versions: %w", err)
	}
	info, _, err := r.lookup(ctx, sid)
	if err != nil {
		return err
	}
	if info.EstadoQR != laravel.StatusConnected || info.StatusVersion != v+5 {
		return fmt.Errorf("stale items were applied: lookup shows %s version %d, want connected version %d", info.EstadoQR, info.StatusVersion, v+5)
	}
	return nil
}

func (r *runner) checkQRStale(ctx context.Context) error {
	sid, v := r.sid(), r.version()
	items := []laravel.QRItem{
		{SessionID: sid, QR: "2@newer", Version: v + 2, EventID: "e2", GeneratedAt: time.Now().UTC()},
		{SessionID: sid, QR: "2@older", Version: v + 1, EventID: "e1", GeneratedAt: time.Now().UTC()},
	}
	a, err := r.send(ctx, http.MethodPost, laravel.PathQRBatch, mustJSON(laravel.QRBatch{QRs: items}), sendOpts{key: r.key()})
	if err != nil {
		return err
	}
	var res laravel.BatchResult
	if err := a.expect(http.StatusOK, &res); err != nil {
		return err
	}
	if err := counts(res, 1, 1, 0); err != nil {
		return err
	}
	info, _, err := r.lookup(ctx, sid)
	if err != nil {
		return err
	}
	if info.QR != "2@newer" || info.QRVersion != v+2 {
		return fmt.Errorf("lookup shows qr %q version %d, want 2@newer version %d", info.QR, info.QRVersion, v+2)
	}
	return nil
}

func (r *runner) checkReplay(ctx context.Context) error {
	sid, v, key := r.sid(), r.version(), r.key()
	first := r.statusItem(sid, laravel.StatusConnected, v+10)
	a1, res1, err := r.postStatuses(ctx, key, first)
	if err != nil {
		return err
	}
	if err := counts(res1, 1, 0, 0); err != nil {
		return fmt.Errorf("first send: %w", err)
	}
	if _, _, err := r.postStatuses(ctx, r.key(), r.statusItem(sid, laravel.StatusDisconnected, v+11)); err != nil {
		return fmt.Errorf("second batch: %w", err)
	}
	a2, res2, err := r.postStatuses(ctx, key, first)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	if err := counts(res2, 1, 0, 0); err != nil {
		return fmt.Errorf("replay did not return the stored response (%w): first %s, replay %s", err, snippet(a1.body), snippet(a2.body))
	}
	info, _, err := r.lookup(ctx, sid)
	if err != nil {
		return err
	}
	if info.EstadoQR != laravel.StatusDisconnected || info.StatusVersion != v+11 {
		return fmt.Errorf("replay was applied again: lookup shows %s version %d", info.EstadoQR, info.StatusVersion)
	}
	return nil
}

func (r *runner) checkKeyReuse(ctx context.Context) error {
	sid, v, key := r.sid(), r.version(), r.key()
	if _, _, err := r.postStatuses(ctx, key, r.statusItem(sid, laravel.StatusConnected, v)); err != nil {
		return err
	}
	a, err := r.send(ctx, http.MethodPost, laravel.PathStatusBatch,
		mustJSON(laravel.StatusBatch{Statuses: []laravel.StatusItem{r.statusItem(sid, laravel.StatusLoggedOut, v+1)}}), sendOpts{key: key})
	if err != nil {
		return err
	}
	if err := a.expectValidation(""); err != nil {
		return err
	}
	if info, _, err := r.lookup(ctx, sid); err != nil || info.StatusVersion != v {
		return fmt.Errorf("the different body was applied: version %d, want %d (%v)", info.StatusVersion, v, err)
	}
	return nil
}

func (r *runner) checkKeyMissing(ctx context.Context) error {
	sid := r.sid()
	a, err := r.send(ctx, http.MethodPost, laravel.PathStatusBatch,
		mustJSON(laravel.StatusBatch{Statuses: []laravel.StatusItem{r.statusItem(sid, laravel.StatusConnected, r.version())}}), sendOpts{})
	if err != nil {
		return err
	}
	return a.expectValidation("")
}

func (r *runner) checkInvalidAppliesNothing(ctx context.Context) error {
	good, bad := r.sid(), r.sid()
	v := r.version()
	items := []map[string]any{
		{"session_id": good, "estado_qr": "connected", "version": v, "event_id": "e1", "changed_at": time.Now().UTC()},
		{"session_id": bad, "estado_qr": "dancing", "version": v, "event_id": "e2", "changed_at": time.Now().UTC()},
	}
	a, err := r.send(ctx, http.MethodPost, laravel.PathStatusBatch, mustJSON(map[string]any{"statuses": items}), sendOpts{key: r.key()})
	if err != nil {
		return err
	}
	if err := a.expectValidation("statuses.1.estado_qr"); err != nil {
		return err
	}
	if _, la, err := r.lookup(ctx, good); err != nil || la.status != http.StatusNotFound {
		return fmt.Errorf("the valid item of a rejected batch was applied (lookup %d, %v)", la.status, err)
	}
	return nil
}

func (r *runner) checkWrongType(ctx context.Context) error {
	items := []map[string]any{{"session_id": r.sid(), "estado_qr": "connected", "version": "seven", "event_id": "e", "changed_at": time.Now().UTC()}}
	a, err := r.send(ctx, http.MethodPost, laravel.PathStatusBatch, mustJSON(map[string]any{"statuses": items}), sendOpts{key: r.key()})
	if err != nil {
		return err
	}
	return a.expectValidation("statuses.0.version")
}

func (r *runner) checkMissingField(ctx context.Context) error {
	items := []map[string]any{{"session_id": r.sid(), "version": r.version(), "event_id": "e", "generated_at": time.Now().UTC()}}
	a, err := r.send(ctx, http.MethodPost, laravel.PathQRBatch, mustJSON(map[string]any{"qrs": items}), sendOpts{key: r.key()})
	if err != nil {
		return err
	}
	return a.expectValidation("qrs.0.qr")
}

func (r *runner) checkMalformed(ctx context.Context) error {
	a, err := r.send(ctx, http.MethodPost, laravel.PathStatusBatch, []byte(`{"statuses":[{"session_id":`), sendOpts{key: r.key()})
	if err != nil {
		return err
	}
	return a.expectValidation("")
}

func (r *runner) checkTooMany(ctx context.Context) error {
	v := r.version()
	items := make([]laravel.StatusItem, laravel.MaxBatchItems+1)
	sid := r.sid()
	for i := range items {
		items[i] = r.statusItem(fmt.Sprintf("%s-%d", sid, i), laravel.StatusPending, v)
	}
	a, err := r.send(ctx, http.MethodPost, laravel.PathStatusBatch, mustJSON(laravel.StatusBatch{Statuses: items}), sendOpts{key: r.key()})
	if err != nil {
		return err
	}
	if err := a.expectValidation("statuses"); err != nil {
		return err
	}
	if _, la, err := r.lookup(ctx, sid+"-0"); err != nil || la.status != http.StatusNotFound {
		return fmt.Errorf("an item of the oversized batch was applied (lookup %d, %v)", la.status, err)
	}
	return nil
}

func (r *runner) checkLegacyInvalid(ctx context.Context) error {
	a, err := r.send(ctx, http.MethodPost, laravel.PathStatus, []byte(fmt.Sprintf(`{"session_id":%q,"estado_qr":"dancing"}`, r.sid())), sendOpts{})
	if err != nil {
		return err
	}
	return a.expectValidation("estado_qr")
}

func (r *runner) checkTooLarge(ctx context.Context) error {
	body := `{"statuses":[],"padding":"` + strings.Repeat("x", laravel.MaxBodyBytes) + `"}`
	a, err := r.send(ctx, http.MethodPost, laravel.PathStatusBatch, []byte(body), sendOpts{key: r.key()})
	if err != nil {
		// Some servers reset the connection after answering 413 mid-upload; that is a failure to
		// observe the status, reported as such.
		return fmt.Errorf("no answer to an oversized body: %w", err)
	}
	return a.expect(http.StatusRequestEntityTooLarge, nil)
}

func (r *runner) checkSignatureMissing(ctx context.Context) error {
	body := mustJSON(laravel.StatusBatch{Statuses: []laravel.StatusItem{r.statusItem(r.sid(), laravel.StatusConnected, r.version())}})
	a, err := r.send(ctx, http.MethodPost, laravel.PathStatusBatch, body, sendOpts{key: r.key(), unsigned: true})
	if err != nil {
		return err
	}
	return a.expect(http.StatusUnauthorized, nil)
}

func (r *runner) checkSignatureWrong(ctx context.Context) error {
	sid := r.sid()
	body := mustJSON(laravel.StatusBatch{Statuses: []laravel.StatusItem{r.statusItem(sid, laravel.StatusConnected, r.version())}})
	now := time.Now().Unix()
	old := now - int64(2*laravel.DefaultSignatureSkew/time.Second)
	cases := map[string]sendOpts{
		"wrong secret": {sig: laravel.Sign([]byte("not-the-secret"), now, body), ts: fmt.Sprint(now)},
		"other body":   {sig: laravel.Sign(r.opts.Secret, now, append(bytes.Clone(body), ' ')), ts: fmt.Sprint(now)},
		"stale time":   {sig: laravel.Sign(r.opts.Secret, old, body), ts: fmt.Sprint(old)},
	}
	var errs []error
	for name, o := range cases {
		o.key = r.key()
		a, err := r.send(ctx, http.MethodPost, laravel.PathStatusBatch, body, o)
		if err != nil {
			return err
		}
		if err := a.expect(http.StatusUnauthorized, nil); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	if _, la, err := r.lookup(ctx, sid); err != nil || la.status != http.StatusNotFound {
		errs = append(errs, fmt.Errorf("a badly signed batch was applied (lookup %d, %v)", la.status, err))
	}
	return errors.Join(errs...)
}

func (r *runner) checkSignatureV2(ctx context.Context) error {
	sid, v := r.sid(), r.version()
	body := mustJSON(laravel.StatusBatch{Statuses: []laravel.StatusItem{r.statusItem(sid, laravel.StatusConnected, v)}})
	a, err := r.send(ctx, http.MethodPost, laravel.PathStatusBatch, body, sendOpts{key: r.key(), v2Only: true})
	if err != nil {
		return err
	}
	var res laravel.BatchResult
	if err := a.expect(http.StatusOK, &res); err != nil {
		return err
	}
	if info, la, err := r.lookup(ctx, sid); err != nil || la.status != http.StatusOK || info.EstadoQR != laravel.StatusConnected {
		return fmt.Errorf("the v2-signed batch was not applied (lookup %d %+v, %v)", la.status, info, err)
	}
	return nil
}

// checkSignatureV2OtherPath sends a QR batch body to the QR batch endpoint with a v2 signature
// made for the status batch path: v2 covers the path, so it must be refused.
func (r *runner) checkSignatureV2OtherPath(ctx context.Context) error {
	sid := r.sid()
	body := mustJSON(laravel.QRBatch{QRs: []laravel.QRItem{{SessionID: sid, QR: "2@other-path", Version: r.version(), EventID: sid + "-qr", GeneratedAt: time.Now().UTC()}}})
	a, err := r.send(ctx, http.MethodPost, laravel.PathQRBatch, body, sendOpts{key: r.key(), v2Only: true, signTarget: laravel.PathStatusBatch})
	if err != nil {
		return err
	}
	if err := a.expect(http.StatusUnauthorized, nil); err != nil {
		return err
	}
	if _, la, err := r.lookup(ctx, sid); err != nil || la.status != http.StatusNotFound {
		return fmt.Errorf("a batch signed for another path was applied (lookup %d, %v)", la.status, err)
	}
	return nil
}

// checkSignatureV2Replay captures a legacy status post (no Idempotency-Key, so nothing but the
// signature can recognise it), changes the status, then replays the capture: the replay must be
// refused, and the status must stay the newer one.
func (r *runner) checkSignatureV2Replay(ctx context.Context) error {
	sid := r.sid()
	var captured http.Header
	connected := mustJSON(laravel.StatusUpdate{SessionID: sid, EstadoQR: laravel.StatusConnected})
	a, err := r.send(ctx, http.MethodPost, laravel.PathStatus, connected, sendOpts{v2Only: true, capture: &captured})
	if err != nil {
		return err
	}
	if err := a.expect(http.StatusOK, nil); err != nil {
		return fmt.Errorf("first request: %w", err)
	}
	logout := mustJSON(laravel.StatusUpdate{SessionID: sid, EstadoQR: laravel.StatusLoggedOut})
	if a, err = r.send(ctx, http.MethodPost, laravel.PathStatus, logout, sendOpts{v2Only: true}); err != nil {
		return err
	}
	if err := a.expect(http.StatusOK, nil); err != nil {
		return fmt.Errorf("second request: %w", err)
	}
	if a, err = r.send(ctx, http.MethodPost, laravel.PathStatus, connected, sendOpts{replay: captured}); err != nil {
		return err
	}
	if err := a.expect(http.StatusUnauthorized, nil); err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	if info, la, err := r.lookup(ctx, sid); err != nil || info.EstadoQR != laravel.StatusLoggedOut {
		return fmt.Errorf("the replay was applied: lookup %d shows %q, want %q (%v)", la.status, info.EstadoQR, laravel.StatusLoggedOut, err)
	}
	return nil
}

func (r *runner) v1CheckName() string {
	if r.opts.RequireSignatureV2 {
		return "signature v1: a v1-only request is 401 once v2 is required, and applies nothing"
	}
	return "signature v1: a v1-only request is still accepted during the migration to v2"
}

func (r *runner) checkSignatureV1Migration(ctx context.Context) error {
	sid := r.sid()
	body := mustJSON(laravel.StatusBatch{Statuses: []laravel.StatusItem{r.statusItem(sid, laravel.StatusConnected, r.version())}})
	a, err := r.send(ctx, http.MethodPost, laravel.PathStatusBatch, body, sendOpts{key: r.key(), v1Only: true})
	if err != nil {
		return err
	}
	if r.opts.RequireSignatureV2 {
		if err := a.expect(http.StatusUnauthorized, nil); err != nil {
			return err
		}
		if _, la, err := r.lookup(ctx, sid); err != nil || la.status != http.StatusNotFound {
			return fmt.Errorf("a v1-only batch was applied although v2 is required (lookup %d, %v)", la.status, err)
		}
		return nil
	}
	var res laravel.BatchResult
	if err := a.expect(http.StatusOK, &res); err != nil {
		return err
	}
	return counts(res, 1, 0, 0)
}
