package batch

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
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

// outcome classifies the result of one send.
type outcome int

const (
	outcomeDelivered outcome = iota // 2xx: ack (and dead-letter per-item errors)
	outcomeRetry                    // 429, 502-504, network: try again later under the same key
	outcomeRejected                 // the breaker refused to send: try again later, not an attempt
	outcomePermanent                // any other answer: dead-letter
	outcomeAborted                  // our own context ended (shutdown): leave pending
)

func classify(err error) outcome {
	switch {
	case err == nil:
		return outcomeDelivered
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		return outcomeRejected
	case errors.Is(err, context.Canceled):
		return outcomeAborted
	case laravel.Retryable(err):
		return outcomeRetry
	case statusOf(err) == http.StatusConflict:
		// The same Idempotency-Key is still being processed (our earlier attempt timed out on
		// our side): ask again later, as the idempotency-key draft says.
		return outcomeRetry
	}
	return outcomePermanent
}

// permanentClientError reports a 4xx other than 429: Laravel is up and answering, so the breaker
// does not count it as a failure.
func permanentClientError(err error) bool {
	var se *laravel.StatusError
	return errors.As(err, &se) && se.Status >= 400 && se.Status < 500 && se.Status != http.StatusTooManyRequests
}
