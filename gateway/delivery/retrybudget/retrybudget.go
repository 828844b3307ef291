// Package retrybudget bounds how much load retries may add to Laravel: a retry budget in the
// style of Finagle's RetryBudget and gRPC's retry throttling. Every first attempt deposits Percent
// percent of a retry, and MinPerSecond retries accrue every second whatever the traffic (so a lone
// failing batch still gets its retries); a retry withdraws one. The balance never exceeds Burst.
//
// Over any span of T seconds the retries a budget lets through are therefore at most
//
//	Burst + MinPerSecond*T + Percent/100 * first attempts in the span
//
// (Bound), whatever Laravel answers: when half of Laravel's answers fail, retries no longer add
// half again of the first attempts, they add at most a fifth plus the floor. A retry the budget
// refuses is not dropped: the caller keeps it and tries again when the budget has room (Wait).
//
// The decision is pure (Config.Withdraw, Config.Deposit on a State); Budget holds the state for
// concurrent callers.
package retrybudget

import (
	"errors"
	"math"
	"sync"
	"time"

	"wagate/gateway/internal/configcheck"
)

// Defaults of Config: Finagle's percentCanRetry (20%), and a floor and burst sized for one
// gateway's batches to one Laravel (tens of requests per second at most), not Finagle's RPC
// clients (10 retries/s).
const (
	DefaultPercent      = 20
	DefaultMinPerSecond = 1
	DefaultBurst        = 2
	// MaxPercent bounds Percent: retries at most ten times the first attempts.
	MaxPercent = 1000
)

// Config configures a retry budget. Zero fields take the defaults.
type Config struct {
	// Percent is the share of the first attempts retries may add, in percent (default 20).
	Percent int
	// MinPerSecond is the retries allowed every second whatever the first attempts (default 1):
	// the floor that lets a batch failing alone be retried.
	MinPerSecond int
	// Burst caps the balance: the most retries that may go at once (default 2).
	Burst int
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Percent: DefaultPercent, MinPerSecond: DefaultMinPerSecond, Burst: DefaultBurst}
}

// Validate reports a configuration that cannot work: a negative field, Percent above MaxPercent.
// Zero fields are fine (they take the defaults).
func (c Config) Validate() error {
	return errors.Join(
		configcheck.NotNegative("retrybudget", "Percent", c.Percent),
		configcheck.NotNegative("retrybudget", "MinPerSecond", c.MinPerSecond),
		configcheck.NotNegative("retrybudget", "Burst", c.Burst),
		configcheck.AtMost("retrybudget", "Percent", c.Percent, MaxPercent),
	)
}

// Filled returns c with its zero fields set to the defaults.
func (c Config) Filled() Config {
	if c.Percent <= 0 {
		c.Percent = DefaultPercent
	}
	if c.MinPerSecond <= 0 {
		c.MinPerSecond = DefaultMinPerSecond
	}
	if c.Burst <= 0 {
		c.Burst = DefaultBurst
	}
	return c
}

// Bound is the most retries a budget of this configuration lets through over a span of the given
// length in which firstAttempts first attempts were made, starting from any balance.
func (c Config) Bound(span time.Duration, firstAttempts float64) float64 {
	c = c.Filled()
	return float64(c.Burst) + float64(c.MinPerSecond)*span.Seconds() + float64(c.Percent)/100*firstAttempts
}

// State is a budget's balance (in retries) as of a time.
type State struct {
	Balance float64
	At      time.Time
}

// refill returns s at now: MinPerSecond retries accrued per second since s.At, capped at Burst.
// A clock that went back accrues nothing.
func (c Config) refill(s State, now time.Time) State {
	if !s.At.IsZero() && now.After(s.At) {
		s.Balance += float64(c.MinPerSecond) * now.Sub(s.At).Seconds()
	}
	if s.At.IsZero() || now.After(s.At) {
		s.At = now
	}
	s.Balance = min(s.Balance, float64(c.Burst))
	return s
}

// Deposit returns s after a first attempt at now: Percent percent of a retry added, capped at
// Burst.
func (c Config) Deposit(s State, now time.Time) State {
	c = c.Filled()
	s = c.refill(s, now)
	s.Balance = min(s.Balance+float64(c.Percent)/100, float64(c.Burst))
	return s
}

// Withdraw decides a retry at now: ok when the balance holds a whole retry (it is then spent);
// otherwise s keeps its balance and wait is how long until the floor alone makes room.
func (c Config) Withdraw(s State, now time.Time) (next State, ok bool, wait time.Duration) {
	c = c.Filled()
	s = c.refill(s, now)
	if s.Balance >= 1 {
		s.Balance--
		return s, true, 0
	}
	secs := (1 - s.Balance) / float64(c.MinPerSecond)
	return s, false, time.Duration(math.Ceil(secs * float64(time.Second)))
}

// Refund returns s with a withdrawn retry given back (the retry did not reach Laravel after all),
// capped at Burst.
func (c Config) Refund(s State, now time.Time) State {
	c = c.Filled()
	s = c.refill(s, now)
	s.Balance = min(s.Balance+1, float64(c.Burst))
	return s
}

// Budget is a retry budget shared by concurrent callers. It starts full (Burst retries), like
// Finagle's reserve: a process's first failures are retried on their backoff at once.
type Budget struct {
	cfg  Config
	mu   sync.Mutex
	s    State
	held int64
}

// New returns a full budget as of now; cfg's zero fields take the defaults.
func New(cfg Config, now time.Time) *Budget {
	cfg = cfg.Filled()
	return &Budget{cfg: cfg, s: State{Balance: float64(cfg.Burst), At: now}}
}

// Config returns the budget's configuration, defaults filled.
func (b *Budget) Config() Config { return b.cfg }

// FirstAttempt deposits a first attempt made at now.
func (b *Budget) FirstAttempt(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.s = b.cfg.Deposit(b.s, now)
}

// Retry asks whether a retry may go at now. When it may not, the retry is counted as held and
// wait says when the floor alone will have made room for it.
func (b *Budget) Retry(now time.Time) (ok bool, wait time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.s, ok, wait = b.cfg.Withdraw(b.s, now)
	if !ok {
		b.held++
	}
	return ok, wait
}

// Refund gives back a retry Retry allowed that was not sent (the breaker refused it).
func (b *Budget) Refund(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.s = b.cfg.Refund(b.s, now)
}

// Held returns how many retries the budget refused (each was kept and tried again later).
func (b *Budget) Held() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.held
}
