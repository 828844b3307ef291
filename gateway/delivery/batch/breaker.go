package batch

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"wagate/gateway/laravel"
)

// BreakerConfig configures the circuit breaker in front of Laravel's batch endpoints.
type BreakerConfig struct {
	// Failures is the number of consecutive delivery failures that opens the breaker (default 5).
	Failures uint32
	// OpenFor is how long the breaker stays open before letting one probe through (default 15 s).
	OpenFor time.Duration
}

// Defaults of BreakerConfig.
const (
	DefaultBreakerFailures = 5
	DefaultBreakerOpenFor  = 15 * time.Second
)

// ErrPaused matches (errors.Is) a send refused because Laravel asked, with a Retry-After, to be
// left alone for a while. It also matches gobreaker.ErrOpenState.
var ErrPaused = fmt.Errorf("batch: sends to Laravel paused by a Retry-After: %w", gobreaker.ErrOpenState)

// errFailure and errIgnored are what the breaker is told about an attempt the policy marked as
// a failure, or as saying nothing about Laravel's health.
var (
	errFailure = errors.New("delivery failure")
	errIgnored = errors.New("not counted")
)

// Breaker is a sony/gobreaker two-step circuit breaker: Allow asks whether a send may go, and the
// caller reports the send with the mark the delivery policy gave it (Decision.Breaker), so a 401
// or a 3xx counts as the failure it is and a 422 as Laravel being up. On top of it, Pause stops
// every send until a time (a Retry-After), whatever the breaker's state.
type Breaker struct {
	cb     *gobreaker.TwoStepCircuitBreaker[laravel.BatchResult]
	opened atomic.Int64
	now    func() time.Time

	mu          sync.Mutex
	pausedUntil time.Time
	paused      atomic.Int64
}

// NewBreaker returns a closed Breaker.
func NewBreaker(cfg BreakerConfig, log *slog.Logger) *Breaker {
	if cfg.Failures == 0 {
		cfg.Failures = DefaultBreakerFailures
	}
	if cfg.OpenFor <= 0 {
		cfg.OpenFor = DefaultBreakerOpenFor
	}
	b := &Breaker{now: time.Now}
	b.cb = gobreaker.NewTwoStepCircuitBreaker[laravel.BatchResult](gobreaker.Settings{
		Name:         "laravel-batch",
		MaxRequests:  1,
		Timeout:      cfg.OpenFor,
		ReadyToTrip:  func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= cfg.Failures },
		IsSuccessful: func(err error) bool { return err == nil },
		IsExcluded:   func(err error) bool { return errors.Is(err, errIgnored) },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			if to == gobreaker.StateOpen {
				b.opened.Add(1)
				log.Warn("laravel batch breaker OPEN: not reading the outbox until it half-opens", "from", from.String(), "open_for", cfg.OpenFor)
			} else {
				log.Info("laravel batch breaker state change", "from", from.String(), "to", to.String())
			}
		},
	})
	return b
}

// Allow asks whether a send may go now. When it may, done must be called once with how the
// attempt counts; when it may not, the error matches gobreaker.ErrOpenState (open or paused) or
// gobreaker.ErrTooManyRequests (half-open, a probe already out).
func (b *Breaker) Allow() (done func(BreakerMark), err error) {
	if b.pausedAt(b.now()) {
		return nil, ErrPaused
	}
	report, err := b.cb.Allow()
	if err != nil {
		return nil, err
	}
	var once sync.Once
	return func(m BreakerMark) {
		once.Do(func() {
			switch m {
			case MarkSuccess:
				report(nil)
			case MarkFailure:
				report(errFailure)
			default:
				report(errIgnored)
			}
		})
	}, nil
}

// Pause stops every send until now + d (a later pause extends it, an earlier one does not
// shorten it).
func (b *Breaker) Pause(d time.Duration) {
	if d <= 0 {
		return
	}
	until := b.now().Add(d)
	b.mu.Lock()
	defer b.mu.Unlock()
	if until.After(b.pausedUntil) {
		b.pausedUntil = until
		b.paused.Add(1)
	}
}

// PausedUntil returns the end of the current pause, zero when none.
func (b *Breaker) PausedUntil() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.pausedUntil.After(b.now()) {
		return time.Time{}
	}
	return b.pausedUntil
}

func (b *Breaker) pausedAt(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return now.Before(b.pausedUntil)
}

// State returns the breaker's current state; a pause reads as open.
func (b *Breaker) State() gobreaker.State {
	if b.pausedAt(b.now()) {
		return gobreaker.StateOpen
	}
	return b.cb.State()
}

// Open reports whether the breaker is open or paused (the flusher then stops reading the outbox).
func (b *Breaker) Open() bool { return b.State() == gobreaker.StateOpen }

// Opened returns how many times the breaker opened.
func (b *Breaker) Opened() int64 { return b.opened.Load() }

// Pauses returns how many times a Retry-After paused (or extended the pause of) every send.
func (b *Breaker) Pauses() int64 { return b.paused.Load() }
