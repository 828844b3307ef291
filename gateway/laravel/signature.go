package laravel

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultSignatureSkew is how far a signed timestamp may be from the receiver's clock.
const DefaultSignatureSkew = 5 * time.Minute

// Errors returned by VerifySignature; match them with errors.Is.
var (
	ErrSignatureMissing  = errors.New("signature or timestamp header missing")
	ErrSignatureMismatch = errors.New("signature does not match the body")
	ErrSignatureExpired  = errors.New("signature timestamp outside the allowed window")
)

// Sign returns the HeaderSignature value for body signed at unix time ts with secret:
// "sha256=" + hex(HMAC-SHA256(secret, "<ts>.<body>")).
func Sign(secret []byte, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(strconv.FormatInt(ts, 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// VerifySignature checks the signature and timestamp headers of a request body against secret,
// in constant time, allowing the timestamp to be at most skew away from now.
func VerifySignature(secret []byte, tsHeader, sigHeader string, body []byte, now time.Time, skew time.Duration) error {
	if tsHeader == "" || sigHeader == "" {
		return ErrSignatureMissing
	}
	ts, err := strconv.ParseInt(strings.TrimSpace(tsHeader), 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q is not unix seconds", ErrSignatureMismatch, tsHeader)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > skew || d < -skew {
		return ErrSignatureExpired
	}
	want := Sign(secret, ts, body)
	if !hmac.Equal([]byte(want), []byte(strings.TrimSpace(sigHeader))) {
		return ErrSignatureMismatch
	}
	return nil
}
