package batch

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"wagate/gateway/laravel"
)

// BreakerConfig configures the circuit breaker in front of Laravel's batch endpoints.
type BreakerConfig struct {
	// Failures is the number of consecutive failed sends that opens the breaker (default 5).
	Failures uint32
	// OpenFor is how long the breaker stays open before letting one probe through (default 15 s).
	OpenFor time.Duration
}

// Breaker is a sony/gobreaker circuit breaker that counts its state changes. A send that ends in a
// permanent 4xx counts as a success (Laravel answered); our own cancellation is not counted.
type Breaker struct {
	cb     *gobreaker.CircuitBreaker[laravel.BatchResult]
	opened atomic.Int64
}

// NewBreaker returns a closed Breaker.
func NewBreaker(cfg BreakerConfig, log *slog.Logger) *Breaker {
	if cfg.Failures == 0 {
		cfg.Failures = 5
	}
	if cfg.OpenFor <= 0 {
		cfg.OpenFor = 15 * time.Second
	}
	b := &Breaker{}
	b.cb = gobreaker.NewCircuitBreaker[laravel.BatchResult](gobreaker.Settings{
		Name:        "laravel-batch",
		MaxRequests: 1,
		Timeout:     cfg.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= cfg.Failures },
		IsSuccessful: func(err error) bool {
			return err == nil || permanentClientError(err)
		},
		IsExcluded: func(err error) bool { return errors.Is(err, context.Canceled) },
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

// Execute runs send through the breaker.
func (b *Breaker) Execute(send func() (laravel.BatchResult, error)) (laravel.BatchResult, error) {
	return b.cb.Execute(send)
}

// State returns the breaker's current state.
func (b *Breaker) State() gobreaker.State { return b.cb.State() }

// Open reports whether the breaker is open (the flusher then stops reading the outbox).
func (b *Breaker) Open() bool { return b.cb.State() == gobreaker.StateOpen }

// Opened returns how many times the breaker opened.
func (b *Breaker) Opened() int64 { return b.opened.Load() }
