package laravel

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Request signatures. Two versions exist; the gateway sends both on every request, and a verifier
// accepts either during a migration and only v2 once configured to require it (docs/security.md).
//
// v1 (HeaderSignature) covers the timestamp and the body only:
//
//	X-Wagate-Timestamp: <unix seconds>
//	X-Wagate-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>
//
// so a captured v1 request can be replayed, under any path, as long as its timestamp is within the
// verifier's skew window.
//
// v2 (HeaderSignatureV2) covers the method, the request target, the Idempotency-Key, the
// timestamp, a per-attempt nonce and the body:
//
//	X-Wagate-Timestamp:    <unix seconds>
//	X-Wagate-Nonce:        <16 to 64 characters of [A-Za-z0-9_-]; the gateway sends 32 hex digits>
//	X-Wagate-Signature-V2: sha256=<hex HMAC-SHA256(secret, canonical string)>
//
// where the canonical string is six lines joined by "\n" (no trailing newline):
//
//	v2
//	<method, as sent: POST>
//	<request target, as on the request line: /api/qr/batch, with "?<query>" when there is one>
//	<Idempotency-Key header value, or an empty line when the request has none>
//	<timestamp, as in X-Wagate-Timestamp>
//	<nonce, as in X-Wagate-Nonce>
//	<hex SHA-256 of the raw body (of the empty string when there is none)>
//
// A verifier remembers every v2 signature it accepted until its timestamp leaves the skew window
// and refuses the same signature again (a replay). The nonce is what lets legitimate repeats
// through: the gateway signs every attempt afresh (a retry of a batch under the same
// Idempotency-Key, or two identical legacy status posts within one second, each get their own
// nonce, so their own signature).

// Header names of the v2 signature (HeaderTimestamp is shared with v1).
const (
	// HeaderSignatureV2 carries "sha256=<hex HMAC-SHA256>" of the v2 canonical string.
	HeaderSignatureV2 = "X-Wagate-Signature-V2"
	// HeaderNonce carries the per-attempt random value the v2 signature covers.
	HeaderNonce = "X-Wagate-Nonce"
)

// DefaultSignatureSkew is how far a signed timestamp may be from the receiver's clock.
const DefaultSignatureSkew = 5 * time.Minute

// DefaultReplayCapacity bounds how many v2 signatures a ReplayGuard remembers at once.
const DefaultReplayCapacity = 1 << 20

// Nonce bounds: a nonce is 16 to 64 characters of [A-Za-z0-9_-].
const (
	minNonceLen = 16
	maxNonceLen = 64
)

// Errors returned by the verifiers; match them with errors.Is.
var (
	ErrSignatureMissing    = errors.New("signature or timestamp header missing")
	ErrSignatureMismatch   = errors.New("signature does not match the request")
	ErrSignatureExpired    = errors.New("signature timestamp outside the allowed window")
	ErrSignatureV2Required = errors.New("a v2 signature (" + HeaderSignatureV2 + ") is required")
	ErrSignatureReplayed   = errors.New("signature already used (replayed request)")
	// ErrReplayGuardFull means the replay guard holds DefaultReplayCapacity live signatures: the
	// request is refused (answer 503: the sender retries) rather than accepted unchecked.
	ErrReplayGuardFull = errors.New("replay guard full")
)

// SignatureVersion says which signature a verifier accepted.
type SignatureVersion int

// The signature versions.
const (
	SignatureNone SignatureVersion = iota // no secret configured, or a safe method: nothing checked
	SignatureV1
	SignatureV2
)

// String names the version ("none", "v1", "v2").
func (v SignatureVersion) String() string {
	switch v {
	case SignatureV1:
		return "v1"
	case SignatureV2:
		return "v2"
	}
	return "none"
}

// Sign returns the v1 HeaderSignature value for body signed at unix time ts with secret:
// "sha256=" + hex(HMAC-SHA256(secret, "<ts>.<body>")).
func Sign(secret []byte, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(strconv.FormatInt(ts, 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// VerifySignature checks the v1 signature and timestamp headers of a request body against
// secret, in constant time, allowing the timestamp to be at most skew away from now.
func VerifySignature(secret []byte, tsHeader, sigHeader string, body []byte, now time.Time, skew time.Duration) error {
	if tsHeader == "" || sigHeader == "" {
		return ErrSignatureMissing
	}
	ts, err := parseTimestamp(tsHeader, now, skew)
	if err != nil {
		return err
	}
	want := Sign(secret, ts, body)
	if !hmac.Equal([]byte(want), []byte(strings.TrimSpace(sigHeader))) {
		return ErrSignatureMismatch
	}
	return nil
}

// parseTimestamp reads a timestamp header and checks it is within skew of now.
func parseTimestamp(tsHeader string, now time.Time, skew time.Duration) (int64, error) {
	ts, err := strconv.ParseInt(strings.TrimSpace(tsHeader), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: timestamp %q is not unix seconds", ErrSignatureMismatch, tsHeader)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > skew || d < -skew {
		return 0, ErrSignatureExpired
	}
	return ts, nil
}

// SignedRequest is what a v2 signature covers.
type SignedRequest struct {
	// Method is the HTTP method as sent ("POST").
	Method string
	// Target is the request target as on the request line: the escaped path, plus "?" and the
	// raw query when there is one ("/api/qr/batch").
	Target string
	// IdempotencyKey is the Idempotency-Key header value, "" when the request has none.
	IdempotencyKey string
	// Timestamp is the signing time in unix seconds (HeaderTimestamp).
	Timestamp int64
	// Nonce is the per-attempt random value (HeaderNonce).
	Nonce string
	// Body is the raw request body.
	Body []byte
}

// CanonicalV2 returns the string a v2 signature is the HMAC of (see the package's signature
// description): "v2\n<method>\n<target>\n<idempotency key>\n<timestamp>\n<nonce>\n<hex sha256(body)>".
func CanonicalV2(r SignedRequest) string {
	sum := sha256.Sum256(r.Body)
	return strings.Join([]string{
		"v2", r.Method, r.Target, r.IdempotencyKey, strconv.FormatInt(r.Timestamp, 10), r.Nonce, hex.EncodeToString(sum[:]),
	}, "\n")
}

// SignV2 returns the HeaderSignatureV2 value of r under secret: "sha256=" + hex(HMAC-SHA256(secret,
// CanonicalV2(r))).
func SignV2(secret []byte, r SignedRequest) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(CanonicalV2(r)))
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// NewNonce returns a fresh nonce: 16 random bytes in hex.
func NewNonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// validNonce reports whether s is 16 to 64 characters of [A-Za-z0-9_-] (no separator of the
// canonical string can hide in it).
func validNonce(s string) bool {
	if len(s) < minNonceLen || len(s) > maxNonceLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// SignRequest signs req, whose body is body, at now with a fresh nonce: it sets HeaderTimestamp,
// the v1 HeaderSignature (for verifiers not yet migrated) and the v2 HeaderNonce and
// HeaderSignatureV2. req's method, URL and Idempotency-Key header must be final. Call it for every
// attempt: a re-sent request with the same signature is refused as a replay.
func SignRequest(req *http.Request, secret, body []byte, now time.Time) {
	ts := now.Unix()
	nonce := NewNonce()
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(secret, ts, body))
	req.Header.Set(HeaderNonce, nonce)
	req.Header.Set(HeaderSignatureV2, SignV2(secret, SignedRequest{
		Method: req.Method, Target: req.URL.RequestURI(), IdempotencyKey: req.Header.Get(HeaderIdempotencyKey),
		Timestamp: ts, Nonce: nonce, Body: body,
	}))
}

// IncomingRequest is what a verifier reads from a request: the covered parts and the signature
// headers, as received.
type IncomingRequest struct {
	Method         string
	Target         string
	IdempotencyKey string
	Timestamp      string // HeaderTimestamp
	Signature      string // HeaderSignature (v1)
	SignatureV2    string // HeaderSignatureV2
	Nonce          string // HeaderNonce
	Body           []byte
}

// Incoming reads an IncomingRequest from a received request and its already read body. The
// target is the request line's (r.RequestURI), or r.URL's when the request was built in-process.
func Incoming(r *http.Request, body []byte) IncomingRequest {
	target := r.RequestURI
	if target == "" || !strings.HasPrefix(target, "/") {
		target = r.URL.RequestURI()
	}
	return IncomingRequest{
		Method: r.Method, Target: target, IdempotencyKey: r.Header.Get(HeaderIdempotencyKey),
		Timestamp: r.Header.Get(HeaderTimestamp), Signature: r.Header.Get(HeaderSignature),
		SignatureV2: r.Header.Get(HeaderSignatureV2), Nonce: r.Header.Get(HeaderNonce), Body: body,
	}
}

// SignatureVerifier checks incoming requests' signatures: v2 when the request carries one (v1 is
// then ignored), else v1 unless RequireV2. Accepted v2 signatures go through Replay. It is safe
// for concurrent use.
type SignatureVerifier struct {
	// Secrets are the accepted secrets, the current one first (a rotation adds the previous one).
	Secrets [][]byte
	// Skew is how far a timestamp may be from now (default DefaultSignatureSkew).
	Skew time.Duration
	// RequireV2 refuses requests without a v2 signature (the end of the migration).
	RequireV2 bool
	// Replay remembers accepted v2 signatures; nil disables replay detection.
	Replay *ReplayGuard
}

// Verify checks in; nothing is checked (SignatureNone) when no secret is configured. The error
// matches one of the Err* values above.
func (v *SignatureVerifier) Verify(in IncomingRequest, now time.Time) (SignatureVersion, error) {
	if len(v.Secrets) == 0 {
		return SignatureNone, nil
	}
	skew := v.Skew
	if skew <= 0 {
		skew = DefaultSignatureSkew
	}
	if strings.TrimSpace(in.SignatureV2) == "" {
		if v.RequireV2 {
			return SignatureV1, ErrSignatureV2Required
		}
		var err error
		for _, s := range v.Secrets {
			if err = VerifySignature(s, in.Timestamp, in.Signature, in.Body, now, skew); err == nil || !errors.Is(err, ErrSignatureMismatch) {
				return SignatureV1, err
			}
		}
		return SignatureV1, err
	}
	if strings.TrimSpace(in.Timestamp) == "" || strings.TrimSpace(in.Nonce) == "" {
		return SignatureV2, ErrSignatureMissing
	}
	ts, err := parseTimestamp(in.Timestamp, now, skew)
	if err != nil {
		return SignatureV2, err
	}
	nonce := strings.TrimSpace(in.Nonce)
	if !validNonce(nonce) {
		return SignatureV2, fmt.Errorf("%w: nonce must be %d to %d characters of [A-Za-z0-9_-]", ErrSignatureMismatch, minNonceLen, maxNonceLen)
	}
	got := []byte(strings.TrimSpace(in.SignatureV2))
	sr := SignedRequest{Method: in.Method, Target: in.Target, IdempotencyKey: in.IdempotencyKey, Timestamp: ts, Nonce: nonce, Body: in.Body}
	ok := false
	for _, s := range v.Secrets {
		// Every secret is tried, so the time taken does not say which one matched.
		ok = hmac.Equal([]byte(SignV2(s, sr)), got) || ok
	}
	if !ok {
		return SignatureV2, ErrSignatureMismatch
	}
	if v.Replay != nil {
		if err := v.Replay.Remember(string(got), time.Unix(ts, 0).Add(skew+time.Second), now); err != nil {
			return SignatureV2, err
		}
	}
	return SignatureV2, nil
}

// ReplayGuard remembers signatures until they expire and refuses one it already holds. It is
// bounded: beyond its capacity of live signatures it refuses (ErrReplayGuardFull) instead of
// forgetting. Signatures are kept in one bucket per expiry second, so forgetting the expired ones
// drops whole buckets (no scan of every signature). It is safe for concurrent use.
type ReplayGuard struct {
	mu       sync.Mutex
	capacity int
	size     int
	buckets  map[int64]map[string]struct{} // forget-at unix second -> signatures
	swept    int64                         // buckets at or before this second are gone
}

// NewReplayGuard returns a guard holding at most capacity live signatures (DefaultReplayCapacity
// when capacity <= 0).
func NewReplayGuard(capacity int) *ReplayGuard {
	if capacity <= 0 {
		capacity = DefaultReplayCapacity
	}
	return &ReplayGuard{capacity: capacity, buckets: make(map[int64]map[string]struct{})}
}

// Remember records sig until forgetAt; it fails with ErrSignatureReplayed when sig is already
// held and has not expired at now. forgetAt must be a function of sig (a signature covers its
// timestamp, and the verifier forgets it when that timestamp leaves the window), so a held
// signature is always found in its forgetAt bucket.
func (g *ReplayGuard) Remember(sig string, forgetAt, now time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sweep(now)
	sec := forgetAt.Unix()
	if forgetAt.After(time.Unix(sec, 0)) {
		sec++ // forgotten at the end of its second, never before forgetAt
	}
	if sec <= now.Unix() {
		return nil // already expired: nothing to remember (the verifier refused it as expired)
	}
	b := g.buckets[sec]
	if _, held := b[sig]; held {
		return ErrSignatureReplayed
	}
	if g.size >= g.capacity {
		return ErrReplayGuardFull
	}
	if b == nil {
		b = make(map[string]struct{})
		g.buckets[sec] = b
	}
	b[sig] = struct{}{}
	g.size++
	return nil
}

// sweep drops the buckets whose second has passed at now.
func (g *ReplayGuard) sweep(now time.Time) {
	cut := now.Unix()
	if cut <= g.swept {
		return
	}
	for sec, b := range g.buckets {
		if sec <= cut {
			g.size -= len(b)
			delete(g.buckets, sec)
		}
	}
	g.swept = cut
}

// Len returns how many live signatures the guard holds.
func (g *ReplayGuard) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.size
}
