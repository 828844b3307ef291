// Package conform checks that a Laravel application implements the wagate contract
// (wagate/gateway/laravel) before a gateway is switched to batch mode: response shapes, bearer
// token rejection, Laravel-shaped validation errors, the version guard (stale items ignored and
// counted), idempotent replay of a batch, the body size limit and, when a secret is given, the
// HMAC body signature. It writes real rows into the target, under session ids that start with a
// random per-run prefix ("conform-<hex>-"), so it is safe to point at a staging database.
//
// Run runs every check and reports each as passed or failed; `bin/fakelaravel conform` is its
// command line, which exits 0 only when every check passed.
package conform

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"wagate/gateway/laravel"
)

// Options configure a run.
type Options struct {
	// URL is the base URL of the Laravel app, e.g. "http://127.0.0.1:8000".
	URL string
	// Token is the bearer token the app expects.
	Token string
	// Secret, when set, signs every POST (v1 and v2, as the gateway does) and adds the signature
	// checks.
	Secret []byte
	// RequireSignatureV2 says the target refuses v1-only signatures (its migration to v2 is
	// over): the v1 check then expects a 401 instead of an accepted request.
	RequireSignatureV2 bool
	// Messages adds the checks of the message and receipt endpoints (issue 15), for a target
	// that implements them.
	Messages bool
	// Client sends the requests; nil means a client with a 30 s timeout.
	Client *http.Client
	// Out receives one "PASS name" or "FAIL name: why" line per check; nil means none.
	Out io.Writer
}

// Check is the outcome of one check.
type Check struct {
	Name   string `json:"name"`
	Passed bool   `json:"passed"`
	Detail string `json:"detail,omitempty"`
}

// Report lists every check of a run.
type Report struct {
	Checks []Check `json:"checks"`
}

// Passed reports whether every check passed.
func (r Report) Passed() bool {
	for _, c := range r.Checks {
		if !c.Passed {
			return false
		}
	}
	return len(r.Checks) > 0
}

// Failed returns the names of the failed checks.
func (r Report) Failed() []string {
	var out []string
	for _, c := range r.Checks {
		if !c.Passed {
			out = append(out, c.Name)
		}
	}
	return out
}

// ErrUnreachable is returned when the target does not answer at all.
var ErrUnreachable = errors.New("conform: target unreachable")

// runner holds one run's state.
type runner struct {
	opts   Options
	base   string
	prefix string
	n      int
	ver    int64
}

// Run checks the target and returns the report. The error is non-nil only when the checks could
// not run (bad options, target unreachable); failed checks are in the report.
func Run(ctx context.Context, opts Options) (Report, error) {
	if opts.URL == "" || opts.Token == "" {
		return Report{}, errors.New("conform: URL and token are required")
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 30 * time.Second}
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return Report{}, fmt.Errorf("conform: %w", err)
	}
	r := &runner{opts: opts, base: strings.TrimRight(opts.URL, "/"), prefix: "conform-" + hex.EncodeToString(rnd[:]), ver: time.Now().UnixNano() / 1000}
	// One request first: an unreachable target is an error, not a list of failures.
	if _, err := r.send(ctx, http.MethodGet, laravel.PathSessionPrefix+r.prefix+"-probe", nil, sendOpts{}); err != nil {
		return Report{}, fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	var rep Report
	all := r.checks()
	if opts.Messages {
		all = append(all, r.messageChecks()...)
	}
	for _, c := range all {
		if c.needsSecret && len(opts.Secret) == 0 {
			continue
		}
		err := c.run(ctx)
		ch := Check{Name: c.name, Passed: err == nil}
		if err != nil {
			ch.Detail = err.Error()
		}
		rep.Checks = append(rep.Checks, ch)
		if opts.Out != nil {
			if ch.Passed {
				fmt.Fprintf(opts.Out, "PASS  %s\n", ch.Name)
			} else {
				fmt.Fprintf(opts.Out, "FAIL  %s: %s\n", ch.Name, ch.Detail)
			}
		}
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
	}
	if opts.Out != nil {
		fmt.Fprintf(opts.Out, "conform: %d of %d checks passed\n", len(rep.Checks)-len(rep.Failed()), len(rep.Checks))
	}
	return rep, nil
}

// sid returns a fresh session id of this run.
func (r *runner) sid() string {
	r.n++
	return fmt.Sprintf("%s-%d", r.prefix, r.n)
}

// key returns a fresh idempotency key of this run.
func (r *runner) key() string {
	r.n++
	return fmt.Sprintf("%s-key-%d", r.prefix, r.n)
}

// version returns a fresh base version; versions are large and increasing so a rerun against the
// same database never collides with an earlier run.
func (r *runner) version() int64 {
	r.ver += 1000
	return r.ver
}

type sendOpts struct {
	token    *string // nil: the right token; "" : no Authorization header
	key      string
	unsigned bool
	sig, ts  string // override the v1 signature headers (and send no v2 signature)

	v1Only, v2Only bool         // send only the v1 or only the v2 signature
	signTarget     string       // sign v2 for this request target instead of the real path
	capture        *http.Header // receives the headers sent
	replay         http.Header  // sent instead of fresh signature headers (a captured request)
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (r *runner) send(ctx context.Context, method, path string, body []byte, o sendOpts) (answer, error) {
	req, err := http.NewRequestWithContext(ctx, method, r.base+path, bytes.NewReader(body))
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	tok := r.opts.Token
	if o.token != nil {
		tok = *o.token
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if o.key != "" {
		req.Header.Set(laravel.HeaderIdempotencyKey, o.key)
	}
	switch {
	case o.replay != nil:
		for k, v := range o.replay {
			req.Header[k] = v
		}
	case len(r.opts.Secret) > 0 && method == http.MethodPost && !o.unsigned:
		if err := r.sign(req, body, o); err != nil {
			return answer{}, err
		}
	}
	if o.sig != "" || o.ts != "" {
		req.Header.Set(laravel.HeaderSignature, o.sig)
		req.Header.Set(laravel.HeaderTimestamp, o.ts)
		req.Header.Del(laravel.HeaderSignatureV2)
		req.Header.Del(laravel.HeaderNonce)
	}
	if o.capture != nil {
		*o.capture = req.Header.Clone()
	}
	resp, err := r.opts.Client.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return answer{}, err
	}
	return answer{resp.StatusCode, resp.Header, b}, nil
}

// sign signs req as the gateway does (v1 and v2, fresh nonce), or as o asks.
func (r *runner) sign(req *http.Request, body []byte, o sendOpts) error {
	signed := req
	if o.signTarget != "" {
		var err error
		if signed, err = http.NewRequest(req.Method, r.base+o.signTarget, nil); err != nil {
			return err
		}
		signed.Header.Set(laravel.HeaderIdempotencyKey, req.Header.Get(laravel.HeaderIdempotencyKey))
	}
	laravel.SignRequest(signed, r.opts.Secret, body, time.Now())
	for _, h := range []string{laravel.HeaderTimestamp, laravel.HeaderSignature, laravel.HeaderSignatureV2, laravel.HeaderNonce} {
		req.Header.Set(h, signed.Header.Get(h))
	}
	if o.v1Only {
		req.Header.Del(laravel.HeaderSignatureV2)
		req.Header.Del(laravel.HeaderNonce)
	}
	if o.v2Only {
		req.Header.Del(laravel.HeaderSignature)
	}
	return nil
}

// expect checks the status and, for JSON answers, that the body is a JSON object with a message
// (errors) and decodes it into v when v is not nil.
func (a answer) expect(status int, v any) error {
	if a.status != status {
		return fmt.Errorf("status %d, want %d (body %s)", a.status, status, snippet(a.body))
	}
	if status >= 400 && status != http.StatusRequestEntityTooLarge {
		var e struct {
			Message *string `json:"message"`
		}
		if err := json.Unmarshal(a.body, &e); err != nil || e.Message == nil {
			return fmt.Errorf("status %d without a JSON {\"message\"} body: %s", status, snippet(a.body))
		}
	}
	if v != nil {
		if err := json.Unmarshal(a.body, v); err != nil {
			return fmt.Errorf("body is not the expected JSON: %v: %s", err, snippet(a.body))
		}
	}
	return nil
}

// expectValidation checks a Laravel 422 naming field.
func (a answer) expectValidation(field string) error {
	var v struct {
		Message string              `json:"message"`
		Errors  map[string][]string `json:"errors"`
	}
	if err := a.expect(http.StatusUnprocessableEntity, &v); err != nil {
		return err
	}
	if v.Message == "" || len(v.Errors) == 0 {
		return fmt.Errorf("422 without Laravel's {message, errors}: %s", snippet(a.body))
	}
	if field != "" && len(v.Errors[field]) == 0 {
		return fmt.Errorf("422 does not name %q: %s", field, snippet(a.body))
	}
	return nil
}

func snippet(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only contract types are marshalled
	}
	return b
}

func (r *runner) statusItem(sid string, s laravel.Status, v int64) laravel.StatusItem {
	return laravel.StatusItem{SessionID: sid, EstadoQR: s, Version: v, EventID: fmt.Sprintf("%s-ev-%d", sid, v), ChangedAt: time.Now().UTC()}
}

func (r *runner) postStatuses(ctx context.Context, key string, items ...laravel.StatusItem) (answer, laravel.BatchResult, error) {
	a, err := r.send(ctx, http.MethodPost, laravel.PathStatusBatch, mustJSON(laravel.StatusBatch{Statuses: items}), sendOpts{key: key})
	if err != nil {
		return a, laravel.BatchResult{}, err
	}
	var res laravel.BatchResult
	return a, res, a.expect(http.StatusOK, &res)
}

func (r *runner) lookup(ctx context.Context, sid string) (laravel.SessionInfo, answer, error) {
	a, err := r.send(ctx, http.MethodGet, laravel.PathSessionPrefix+sid, nil, sendOpts{})
	var info laravel.SessionInfo
	if err == nil && a.status == http.StatusOK {
		err = json.Unmarshal(a.body, &info)
	}
	return info, a, err
}

// counts compares a BatchResult's counters.
func counts(res laravel.BatchResult, updated, stale, failed int) error {
	if res.Updated != updated || res.Stale != stale || res.Failed != failed || res.Success != (failed == 0) {
		return fmt.Errorf("got {success:%v updated:%d stale:%d failed:%d}, want {success:%v updated:%d stale:%d failed:%d}",
			res.Success, res.Updated, res.Stale, res.Failed, failed == 0, updated, stale, failed)
	}
	return nil
}
