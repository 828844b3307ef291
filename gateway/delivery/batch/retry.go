package batch

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/sony/gobreaker/v2"

	"wagate/gateway/laravel"
)

// Backoff is the retry policy: exponential backoff with equal jitter, never earlier than the
// server's Retry-After.
type Backoff struct {
	// Initial is the delay before the second attempt (before jitter).
	Initial time.Duration
	// Max caps the delay (before honouring Retry-After).
	Max time.Duration
	// Multiplier grows the delay per attempt.
	Multiplier float64
}

// DefaultBackoff is 250 ms doubling up to 30 s.
var DefaultBackoff = Backoff{Initial: 250 * time.Millisecond, Max: 30 * time.Second, Multiplier: 2}

// Delay returns the wait after the attempt-th failed attempt (1-based), at least retryAfter.
// jitter is a number in [0,1) (rand.Float64 in production).
func (b Backoff) Delay(attempt int, retryAfter time.Duration, jitter float64) time.Duration {
	d := float64(b.Initial)
	for i := 1; i < attempt && d < float64(b.Max); i++ {
		d *= b.Multiplier
	}
	d = min(d, float64(b.Max))
	// Equal jitter: half fixed, half random, so retries of many batches spread out.
	wait := time.Duration(d/2 + jitter*d/2)
	return max(wait, retryAfter)
}

func randomJitter() float64 { return rand.Float64() }

// outcomeOf classifies the error of one send (nil is a decoded 2xx) and returns the HTTP status
// and Retry-After it carries.
func outcomeOf(err error) (o Outcome, status int, retryAfter time.Duration) {
	var se *laravel.StatusError
	switch {
	case err == nil:
		return OutcomeDelivered, 0, 0
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		return OutcomeRejected, 0, 0
	case errors.As(err, &se):
		return OutcomeStatus, se.Status, se.RetryAfter
	case errors.Is(err, laravel.ErrMalformedResponse):
		return OutcomeUndecodable, 0, 0
	case errors.Is(err, context.Canceled):
		return OutcomeAborted, 0, 0
	}
	// Refused or reset connections, timeouts (the client's own deadline included), a body cut
	// short: Laravel may or may not have applied the batch; the same key makes a retry safe.
	return OutcomeNetwork, 0, 0
}
