package batch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sony/gobreaker/v2"

	"wagate/gateway/laravel"
)

// send runs one attempt through the breaker, reporting it with mark; it returns the breaker's
// refusal, if any.
func send(b *Breaker, mark BreakerMark) error {
	done, err := b.Allow()
	if err != nil {
		return err
	}
	done(mark)
	return nil
}

func TestTheBreakerOpensHalfOpensAndClosesOnTheFakeClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBreaker(BreakerConfig{Failures: 3, OpenFor: 10 * time.Second}, slog.New(slog.DiscardHandler))
		for i := 0; i < 3; i++ {
			_ = send(b, MarkFailure)
		}
		if b.State() != gobreaker.StateOpen || b.Opened() != 1 {
			t.Fatalf("state %s after 3 consecutive failures; want open", b.State())
		}
		if err := send(b, MarkSuccess); !errors.Is(err, gobreaker.ErrOpenState) {
			t.Fatalf("send while open: %v; want ErrOpenState", err)
		}
		if o, _, _ := outcomeOf(gobreaker.ErrOpenState); o != OutcomeRejected {
			t.Fatalf("a send the open breaker refused is %s; want rejected (not an attempt)", o)
		}
		time.Sleep(10*time.Second - time.Millisecond)
		if b.State() != gobreaker.StateOpen {
			t.Fatal("half-open before OpenFor elapsed")
		}
		time.Sleep(2 * time.Millisecond)
		if b.State() != gobreaker.StateHalfOpen {
			t.Fatalf("state %s after OpenFor; want half-open", b.State())
		}
		// A failed probe opens it again for another OpenFor.
		_ = send(b, MarkFailure)
		if b.State() != gobreaker.StateOpen || b.Opened() != 2 {
			t.Fatalf("state %s after a failed probe; want open again", b.State())
		}
		time.Sleep(10*time.Second + time.Millisecond)
		if err := send(b, MarkSuccess); err != nil {
			t.Fatal(err)
		}
		if b.State() != gobreaker.StateClosed {
			t.Fatalf("state %s after a good probe; want closed", b.State())
		}
	})
}

func TestItemRefusalsAndIgnoredAttemptsDoNotTripTheBreaker(t *testing.T) {
	b := NewBreaker(BreakerConfig{Failures: 2, OpenFor: time.Hour}, slog.New(slog.DiscardHandler))
	for i := 0; i < 5; i++ {
		_ = send(b, MarkSuccess) // e.g. a 422: Laravel is up
		_ = send(b, MarkIgnore)  // e.g. our own cancellation, a 409
		_ = send(b, MarkFailure)
	}
	if b.State() != gobreaker.StateClosed {
		t.Fatalf("state %s; only consecutive failures may open it", b.State())
	}
}

// Defect 2: the breaker counted 401/403/404/405 as successes, so it never opened while every
// event was refused. It now counts whatever the policy marks as a failure.
func TestTheBreakerOpensOnAnswersThePolicyMarksAsFailures(t *testing.T) {
	p := Config{}
	p.fill()
	policy := p.policy()
	for _, status := range []int{301, 307, 401, 403, 404, 405, 410, 500, 503} {
		b := NewBreaker(BreakerConfig{Failures: 3, OpenFor: time.Hour}, slog.New(slog.DiscardHandler))
		for i := 1; i <= 3; i++ {
			dec := policy.Decide(Attempt{Outcome: OutcomeStatus, Status: status, Attempts: i, Items: 1})
			_ = send(b, dec.Breaker)
		}
		if !b.Open() {
			t.Errorf("HTTP %d three times: breaker %s; want open", status, b.State())
		}
	}
}

func TestARetryAfterPausesEverySendUntilItEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBreaker(BreakerConfig{}, slog.New(slog.DiscardHandler))
		b.Pause(time.Minute)
		b.Pause(time.Second) // a shorter pause does not shorten the current one
		if !b.Open() || !errors.Is(send(b, MarkSuccess), gobreaker.ErrOpenState) || !errors.Is(send(b, MarkSuccess), ErrPaused) {
			t.Fatal("a send went out during the pause")
		}
		time.Sleep(time.Minute - time.Millisecond)
		if !b.Open() {
			t.Fatal("the pause ended early")
		}
		time.Sleep(time.Millisecond)
		if b.Open() || send(b, MarkSuccess) != nil || !b.PausedUntil().IsZero() {
			t.Fatalf("state %s after the pause; want closed", b.State())
		}
		if b.Pauses() != 1 {
			t.Fatalf("%d pauses counted; want 1", b.Pauses())
		}
	})
}

func TestOutcomeOf(t *testing.T) {
	cases := []struct {
		err        error
		want       Outcome
		status     int
		retryAfter time.Duration
	}{
		{nil, OutcomeDelivered, 0, 0},
		{&laravel.StatusError{Status: 429, RetryAfter: 3 * time.Second}, OutcomeStatus, 429, 3 * time.Second},
		{fmt.Errorf("wrapped: %w", &laravel.StatusError{Status: 503}), OutcomeStatus, 503, 0},
		{&laravel.StatusError{Status: 307, Location: "https://elsewhere.example/api"}, OutcomeStatus, 307, 0},
		{&laravel.StatusError{Status: 401}, OutcomeStatus, 401, 0},
		{fmt.Errorf("laravel: %w", &timeoutErr{}), OutcomeNetwork, 0, 0},
		{fmt.Errorf("laravel: %w", context.DeadlineExceeded), OutcomeNetwork, 0, 0},
		{errors.New("connection reset by peer"), OutcomeNetwork, 0, 0},
		{fmt.Errorf("x: %w", laravel.ErrMalformedResponse), OutcomeUndecodable, 0, 0},
		{gobreaker.ErrOpenState, OutcomeRejected, 0, 0},
		{ErrPaused, OutcomeRejected, 0, 0},
		{gobreaker.ErrTooManyRequests, OutcomeRejected, 0, 0},
		{fmt.Errorf("laravel: %w", context.Canceled), OutcomeAborted, 0, 0},
	}
	for _, c := range cases {
		o, st, ra := outcomeOf(c.err)
		if o != c.want || st != c.status || ra != c.retryAfter {
			t.Errorf("outcomeOf(%v) = %s, %d, %s; want %s, %d, %s", c.err, o, st, ra, c.want, c.status, c.retryAfter)
		}
	}
}

func TestBackoffGrowsIsCappedAndNeverBeatsRetryAfter(t *testing.T) {
	b := Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2}
	cases := []struct {
		attempt    int
		retryAfter time.Duration
		jitter     float64
		want       time.Duration
	}{
		{1, 0, 0, 50 * time.Millisecond},
		{1, 0, 0.999999, 100 * time.Millisecond},
		{2, 0, 0, 100 * time.Millisecond},
		{3, 0, 0, 200 * time.Millisecond},
		{10, 0, 0, 500 * time.Millisecond},
		{10, 0, 0.999999, time.Second},
		{1, 7 * time.Second, 0.5, 7 * time.Second},
	}
	for _, c := range cases {
		got := b.Delay(c.attempt, c.retryAfter, c.jitter)
		if d := got - c.want; d < -time.Microsecond || d > time.Microsecond {
			t.Errorf("Delay(%d, %s, %v) = %s; want %s", c.attempt, c.retryAfter, c.jitter, got, c.want)
		}
	}
}
