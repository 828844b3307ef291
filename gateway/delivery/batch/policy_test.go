package batch

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"wagate/gateway/laravel"
)

// testPolicy has round numbers so the table reads easily: backoff 1 s doubling to 8 s (jitter 0
// gives half of it: 500 ms, 1 s, 2 s, ... 4 s), budget 2 min, horizon 5 min, Retry-After cap 5 min.
var testPolicy = Policy{
	Backoff:          Backoff{Initial: time.Second, Max: 8 * time.Second, Multiplier: 2},
	DeliveryTimeout:  2 * time.Minute,
	PoisonHorizon:    5 * time.Minute,
	MinAloneFailures: 3,
	MaxRetryAfter:    5 * time.Minute,
}

// The delivery policy, row by row (docs/batch-delivery.md states the same table).
func TestDecide(t *testing.T) {
	status := func(code int) Attempt { return Attempt{Outcome: OutcomeStatus, Status: code, Attempts: 1, Items: 4} }
	with := func(a Attempt, f func(*Attempt)) Attempt { f(&a); return a }
	final := func(a Attempt) Attempt { a.Final = true; return a }
	poison := func(a Attempt) Attempt {
		a.ServerErrorFor, a.OthersDelivered = 5*time.Minute, true
		return a
	}
	alone := func(a Attempt, failures int) Attempt { a.Items, a.AloneFailures = 1, failures; return a }
	retry := func(label string, delay time.Duration) Decision {
		return Decision{Action: ActionRetry, Delay: delay, Failure: label, Breaker: MarkFailure}
	}

	cases := []struct {
		name string
		in   Attempt
		want Decision
	}{
		// A 2xx.
		{"2xx accounting for every item: ack", Attempt{Outcome: OutcomeDelivered, Attempts: 1, Items: 4},
			Decision{Action: ActionAck, Breaker: MarkSuccess}},
		{"2xx naming refused items: ack the rest, dead-letter those", Attempt{Outcome: OutcomeDelivered, Attempts: 1, Items: 4, Refused: 1},
			Decision{Action: ActionAck, Refused: FateDeadLetter, Breaker: MarkSuccess}},
		{"2xx not accounting for items: ack the rest, send those again", Attempt{Outcome: OutcomeDelivered, Attempts: 2, Items: 4, Unaccounted: 3},
			Decision{Action: ActionAck, Unaccounted: FateRetry, Delay: time.Second, Failure: "unaccounted", Breaker: MarkFailure}},
		{"final 2xx with refused and unaccounted items: both stay pending",
			final(Attempt{Outcome: OutcomeDelivered, Attempts: 1, Items: 4, Refused: 1, Unaccounted: 2}),
			Decision{Action: ActionAck, Refused: FateLeavePending, Unaccounted: FateLeavePending, Failure: "unaccounted", Breaker: MarkFailure}},
		{"undecodable 2xx: retried under the same key", Attempt{Outcome: OutcomeUndecodable, Attempts: 1, Items: 4},
			retry("undecodable", 500*time.Millisecond)},

		// No answer, or the breaker.
		{"network error: retried", Attempt{Outcome: OutcomeNetwork, Attempts: 3, Items: 4}, retry("network", 2*time.Second)},
		{"network error past the budget: re-batched", Attempt{Outcome: OutcomeNetwork, Attempts: 9, Items: 4, Age: 2 * time.Minute},
			Decision{Action: ActionRequeue, Failure: "network", Breaker: MarkFailure}},
		{"refused by the breaker: tried again, not an attempt", Attempt{Outcome: OutcomeRejected, Items: 4},
			Decision{Action: ActionRetry, Delay: 500 * time.Millisecond, Breaker: MarkIgnore}},
		{"refused by the breaker at shutdown: pending", final(Attempt{Outcome: OutcomeRejected, Items: 4}),
			Decision{Action: ActionLeavePending, Breaker: MarkIgnore}},
		{"our own cancellation: pending", Attempt{Outcome: OutcomeAborted, Items: 4},
			Decision{Action: ActionLeavePending, Breaker: MarkIgnore}},

		// Item-level refusals.
		{"422 of a batch: split", status(422), Decision{Action: ActionSplit, Failure: "422", Breaker: MarkSuccess}},
		{"400 of a batch: split", status(400), Decision{Action: ActionSplit, Failure: "400", Breaker: MarkSuccess}},
		{"413 of a batch: split", status(413), Decision{Action: ActionSplit, Failure: "413", Breaker: MarkSuccess}},
		{"422 of an item alone: dead letter", alone(status(422), 1), Decision{Action: ActionDeadLetter, Failure: "422", Breaker: MarkSuccess}},
		{"422 with a Retry-After: split, no pause", with(status(422), func(a *Attempt) { a.RetryAfter = time.Minute }),
			Decision{Action: ActionSplit, Failure: "422", Breaker: MarkSuccess}},
		{"final 422 of a batch: pending, not split", final(status(422)), Decision{Action: ActionLeavePending, Failure: "422", Breaker: MarkSuccess}},
		{"final 422 of an item alone: pending, not dead-lettered", final(alone(status(422), 1)),
			Decision{Action: ActionLeavePending, Failure: "422", Breaker: MarkSuccess}},

		// Delivery failures: retried, never dead-lettered.
		{"301: retried", status(301), retry("301", 500*time.Millisecond)},
		{"307: retried", status(307), retry("307", 500*time.Millisecond)},
		{"401: retried", status(401), retry("401", 500*time.Millisecond)},
		{"401 of an item alone: retried", alone(status(401), 1), retry("401", 500*time.Millisecond)},
		{"403: retried", status(403), retry("403", 500*time.Millisecond)},
		{"404: retried", status(404), retry("404", 500*time.Millisecond)},
		{"405: retried", status(405), retry("405", 500*time.Millisecond)},
		{"408: retried", status(408), retry("408", 500*time.Millisecond)},
		{"410: retried", status(410), retry("410", 500*time.Millisecond)},
		{"421: retried", status(421), retry("421", 500*time.Millisecond)},
		{"an unknown 4xx: retried", status(418), retry("418", 500*time.Millisecond)},
		{"409 (the key is being processed): retried, not counted by the breaker", status(409),
			Decision{Action: ActionRetry, Delay: 500 * time.Millisecond, Failure: "409", Breaker: MarkIgnore}},
		{"401 past the budget: re-batched", with(status(401), func(a *Attempt) { a.Age = 3 * time.Minute }),
			Decision{Action: ActionRequeue, Failure: "401", Breaker: MarkFailure}},
		{"final 401: pending", final(status(401)), Decision{Action: ActionLeavePending, Failure: "401", Breaker: MarkFailure}},
		{"backoff grows with the attempts and is capped", with(status(502), func(a *Attempt) { a.Attempts = 10 }), retry("502", 4*time.Second)},

		// Retry-After pauses every send, capped.
		{"429 with Retry-After: pause everything until then", with(status(429), func(a *Attempt) { a.RetryAfter = 30 * time.Second }),
			Decision{Action: ActionRetry, Delay: 30 * time.Second, PauseAll: 30 * time.Second, Failure: "429", Breaker: MarkFailure}},
		{"503 with a 24 h Retry-After: the pause is capped", with(status(503), func(a *Attempt) { a.RetryAfter = 24 * time.Hour }),
			Decision{Action: ActionRetry, Delay: 5 * time.Minute, PauseAll: 5 * time.Minute, Failure: "503", Breaker: MarkFailure}},
		{"final 429 with Retry-After: pending, no pause", final(with(status(429), func(a *Attempt) { a.RetryAfter = time.Minute })),
			Decision{Action: ActionLeavePending, Failure: "429", Breaker: MarkFailure}},

		// 5xx and the poison horizon.
		{"500: retried", status(500), retry("500", 500*time.Millisecond)},
		{"500 for 4 min while others are delivered: retried", with(status(500), func(a *Attempt) { a.ServerErrorFor, a.OthersDelivered = 4*time.Minute, true }),
			retry("500", 500*time.Millisecond)},
		{"500 for an hour while nothing is delivered (an outage): retried", with(status(500), func(a *Attempt) { a.ServerErrorFor = time.Hour }),
			retry("500", 500*time.Millisecond)},
		{"500 past the horizon while others are delivered: split", poison(status(500)),
			Decision{Action: ActionSplit, Failure: "500", Breaker: MarkFailure}},
		{"503 past the horizon while others are delivered: split", poison(status(503)),
			Decision{Action: ActionSplit, Failure: "503", Breaker: MarkFailure}},
		{"500 past the horizon, alone, twice: retried", alone(poison(status(500)), 2), retry("500", 500*time.Millisecond)},
		{"500 past the horizon, alone, 3 times: dead letter", alone(poison(status(500)), 3),
			Decision{Action: ActionDeadLetter, Failure: "500", Breaker: MarkFailure}},
		{"final 500 past the horizon, alone: pending", final(alone(poison(status(500)), 5)),
			Decision{Action: ActionLeavePending, Failure: "500", Breaker: MarkFailure}},
		{"final 500 past the horizon: pending, not split", final(poison(status(500))),
			Decision{Action: ActionLeavePending, Failure: "500", Breaker: MarkFailure}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := testPolicy.Decide(c.in)
			if got.Reason == "" {
				t.Errorf("Decide(%+v) gives no reason", c.in)
			}
			got.Reason = ""
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("Decide(%+v)\n got  %+v\n want %+v", c.in, got, c.want)
			}
		})
	}
}

// Whatever the answer, nothing but an item-level refusal (or a 5xx past the horizon, alone)
// dead-letters, and the final attempt never dead-letters or splits.
func TestOnlyItemRefusalsAndLoneItemsPastThePoisonHorizonDeadLetter(t *testing.T) {
	outcomes := []Outcome{OutcomeDelivered, OutcomeUndecodable, OutcomeStatus, OutcomeNetwork, OutcomeRejected, OutcomeAborted}
	for _, o := range outcomes {
		for code := 100; code <= 599; code++ {
			if o != OutcomeStatus && code > 100 {
				break
			}
			for _, final := range []bool{false, true} {
				for _, items := range []int{1, 7} {
					for _, poisoned := range []bool{false, true} {
						a := Attempt{Outcome: o, Status: code, Attempts: 5, Items: items, Final: final, Refused: 1, Unaccounted: 1}
						if poisoned {
							a.ServerErrorFor, a.OthersDelivered, a.AloneFailures = time.Hour, true, 9
						}
						d := testPolicy.Decide(a)
						name := fmt.Sprintf("%s %d final=%v items=%d poisoned=%v", o, code, final, items, poisoned)
						if final && (d.Action == ActionDeadLetter || d.Action == ActionSplit || d.Refused == FateDeadLetter) {
							t.Errorf("%s: the final attempt decided %s (refused: %s)", name, d.Action, d.Refused)
						}
						if d.Action == ActionDeadLetter {
							itemRefused := itemRefusal(code) && items == 1
							lonePoison := code >= 500 && poisoned && items == 1
							if !itemRefused && !lonePoison {
								t.Errorf("%s: dead-lettered", name)
							}
						}
						if d.Action == ActionSplit && !itemRefusal(code) && !(code >= 500 && poisoned) {
							t.Errorf("%s: split", name)
						}
					}
				}
			}
		}
	}
}

func TestAccount(t *testing.T) {
	sids := []string{"a", "b", "c", "d"}
	cases := []struct {
		name string
		res  laravel.BatchResult
		want Accounting
	}{
		{"all updated", laravel.BatchResult{Success: true, Updated: 4},
			Accounting{Refused: map[int]string{}}},
		{"updated and stale", laravel.BatchResult{Success: true, Updated: 1, Stale: 3},
			Accounting{Refused: map[int]string{}}},
		{"one failure, named", laravel.BatchResult{Updated: 3, Failed: 1, Errors: []laravel.ItemError{{SessionID: "c", Error: "unknown session"}}},
			Accounting{Refused: map[int]string{2: "unknown session"}}},
		{"failed exceeds the named errors: every item not named is unaccounted",
			laravel.BatchResult{Updated: 2, Failed: 2, Errors: []laravel.ItemError{{SessionID: "c", Error: "disabled"}}},
			Accounting{Refused: map[int]string{2: "disabled"}, Unaccounted: []int{0, 1, 3}}},
		{"counts short of the items sent", laravel.BatchResult{Success: true, Updated: 3},
			Accounting{Refused: map[int]string{}, Unaccounted: []int{0, 1, 2, 3}}},
		{"counts beyond the items sent", laravel.BatchResult{Success: true, Updated: 5},
			Accounting{Refused: map[int]string{}, Unaccounted: []int{0, 1, 2, 3}}},
		{"an empty 2xx body ({})", laravel.BatchResult{},
			Accounting{Refused: map[int]string{}, Unaccounted: []int{0, 1, 2, 3}}},
		{"an error naming a session not sent", laravel.BatchResult{Updated: 3, Failed: 1, Errors: []laravel.ItemError{{SessionID: "zz", Error: "?"}}},
			Accounting{Refused: map[int]string{}, Unaccounted: []int{0, 1, 2, 3}}},
		{"the same session named twice", laravel.BatchResult{Updated: 2, Failed: 2, Errors: []laravel.ItemError{{SessionID: "a", Error: "x"}, {SessionID: "a", Error: "y"}}},
			Accounting{Refused: map[int]string{0: "x"}, Unaccounted: []int{1, 2, 3}}},
		{"negative counts", laravel.BatchResult{Updated: 5, Stale: -1},
			Accounting{Refused: map[int]string{}, Unaccounted: []int{0, 1, 2, 3}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Account(sids, c.res); !reflect.DeepEqual(got, c.want) {
				t.Errorf("Account(%+v) = %+v; want %+v", c.res, got, c.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string // a fragment of the error; empty for none
	}{
		{"zero takes the defaults", Config{}, ""},
		{"a short poison horizon for a compressed scenario", Config{PoisonHorizon: time.Second, MaxRetryAfter: time.Second}, ""},
		{"negative poison horizon", Config{PoisonHorizon: -time.Second}, "PoisonHorizon is negative"},
		{"negative Retry-After cap", Config{MaxRetryAfter: -1}, "MaxRetryAfter is negative"},
		{"negative buffer", Config{MaxBuffered: -1}, "MaxBuffered is negative"},
		{"a batch above the contract", Config{BatchSize: laravel.MaxBatchItems + 1}, "above the contract"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.Validate()
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("Validate: %v; want nil", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("Validate: %v; want an error containing %q", err, c.want)
			}
		})
	}
	var cfg Config
	cfg.fill()
	if cfg.PoisonHorizon != DefaultPoisonHorizon || cfg.MaxRetryAfter != DefaultMaxRetryAfter {
		t.Fatalf("defaults %s, %s", cfg.PoisonHorizon, cfg.MaxRetryAfter)
	}
}
