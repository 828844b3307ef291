package batch

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"wagate/gateway/laravel"
)

// Outcome is what one attempt to send a batch came to, as the flusher saw it.
type Outcome int

// Outcomes of an attempt.
const (
	// OutcomeDelivered is a 2xx whose body decoded; Attempt.Refused and Attempt.Unaccounted say
	// how its items were accounted for.
	OutcomeDelivered Outcome = iota
	// OutcomeUndecodable is a 2xx whose body could not be decoded: Laravel may well have applied
	// the batch, but the gateway cannot tell what became of each item.
	OutcomeUndecodable
	// OutcomeStatus is any answer outside 2xx (Attempt.Status): 1xx, 3xx, 4xx, 5xx.
	OutcomeStatus
	// OutcomeNetwork is no answer at all: connection refused or reset, a timeout, a cut body.
	OutcomeNetwork
	// OutcomeRejected is the breaker refusing to send (open, paused or half-open busy): no
	// request left, so it is not an attempt.
	OutcomeRejected
	// OutcomeAborted is the gateway's own context ending (shutdown) during the request.
	OutcomeAborted
)

var outcomeNames = [...]string{"delivered", "undecodable", "status", "network", "rejected", "aborted"}

func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// Attempt is everything the policy looks at to decide what to do with a batch after one send.
type Attempt struct {
	Outcome Outcome
	// Status is the HTTP status of an OutcomeStatus answer.
	Status int
	// RetryAfter is the answer's Retry-After (zero when absent).
	RetryAfter time.Duration
	// Attempts counts the requests made for this batch, this one included.
	Attempts int
	// Items is the number of items in the batch.
	Items int
	// Refused is, for a 2xx, how many items Laravel named in its errors (item-level refusals).
	Refused int
	// Unaccounted is, for a 2xx, how many items the answer does not account for (its counts do not
	// add up, or it counts failures it does not name): they cannot be told apart from the applied
	// ones.
	Unaccounted int
	// Final is the one attempt Close makes at shutdown.
	Final bool
	// Age is the time since the batch's first attempt was due.
	Age time.Duration
	// ServerErrorFor is how long the batch's items have been answered 5xx without a break, this
	// answer included (zero when this answer is not a 5xx).
	ServerErrorFor time.Duration
	// AloneFailures counts the consecutive 5xx answers to a batch of this one item, this one
	// included.
	AloneFailures int
	// OthersDelivered reports that another batch was delivered (2xx) since that run of 5xx began:
	// Laravel is up, and something in this batch is what fails.
	OthersDelivered bool
	// Jitter is a number in [0,1) that spreads the backoff.
	Jitter float64
}

// Action is what the flusher does with a batch.
type Action int

// Actions.
const (
	// ActionAck acknowledges the items a 2xx accounted for; Decision.Refused and
	// Decision.Unaccounted say what happens to the others.
	ActionAck Action = iota
	// ActionRetry sends the same batch again after Decision.Delay, under the same Idempotency-Key.
	ActionRetry
	// ActionSplit sends each half of the batch at once, each under its own key.
	ActionSplit
	// ActionDeadLetter moves the batch's one item to the dead-letter stream with Decision.Reason.
	ActionDeadLetter
	// ActionRequeue puts the items back among the waiting ones (the delivery budget is spent);
	// they stay pending in the outbox and are re-batched, possibly with newer versions.
	ActionRequeue
	// ActionLeavePending stops working on the batch: its entries stay pending in the outbox for
	// the next start (or for the next flush, when the breaker refused it).
	ActionLeavePending
)

var actionNames = [...]string{"ack", "retry", "split", "dead-letter", "requeue", "leave-pending"}

func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return "action(" + strconv.Itoa(int(a)) + ")"
}

// ItemFate is what happens to the items of a 2xx that were not applied.
type ItemFate int

// Item fates.
const (
	// FateNone: there are no such items.
	FateNone ItemFate = iota
	// FateDeadLetter: each goes to the dead-letter stream with the error Laravel named.
	FateDeadLetter
	// FateRetry: they are sent again as a batch of their own after Decision.Delay.
	FateRetry
	// FateLeavePending: they stay pending in the outbox (shutdown).
	FateLeavePending
)

var fateNames = [...]string{"none", "dead-letter", "retry", "leave-pending"}

func (f ItemFate) String() string {
	if int(f) < len(fateNames) {
		return fateNames[f]
	}
	return "fate(" + strconv.Itoa(int(f)) + ")"
}

// BreakerMark is how an attempt counts for the circuit breaker.
type BreakerMark int

// Breaker marks.
const (
	// MarkIgnore: the attempt says nothing about Laravel's health (our cancellation, a key still
	// being processed, a send the breaker itself refused).
	MarkIgnore BreakerMark = iota
	// MarkSuccess: Laravel answered as the contract says.
	MarkSuccess
	// MarkFailure: a delivery failure; enough in a row open the breaker.
	MarkFailure
)

// Decision is what the policy decided for one attempt.
type Decision struct {
	Action Action
	// Refused and Unaccounted are the fates of a 2xx's items Laravel refused by name and of the
	// items it did not account for (ActionAck only).
	Refused, Unaccounted ItemFate
	// Delay is when to send again (ActionRetry, and FateRetry of unaccounted items).
	Delay time.Duration
	// PauseAll, when positive, pauses every send to Laravel for that long (a Retry-After, capped).
	PauseAll time.Duration
	// Failure is the label of a delivery failure ("503", "network", "undecodable", "unaccounted",
	// ...), empty when the attempt is not one. Every failure is counted under its label and logged.
	Failure string
	// Breaker is how the attempt counts for the circuit breaker.
	Breaker BreakerMark
	// Reason says why (dead letters carry it; logs print it).
	Reason string
}

// Policy decides, for every outcome of a send, what the flusher does. It is a pure function of
// its configuration and the Attempt; the table in policy_test.go and docs/batch-delivery.md state
// it row by row.
type Policy struct {
	// Backoff spaces the retries.
	Backoff Backoff
	// DeliveryTimeout is the retry budget of one batch; past it, the items are re-batched.
	DeliveryTimeout time.Duration
	// PoisonHorizon is how long a 5xx must persist for a batch, while other batches are
	// delivered, before the batch is split to find a poison item, and before an item failing
	// alone is dead-lettered.
	PoisonHorizon time.Duration
	// MinAloneFailures is how many 5xx in a row an item must get alone, past the horizon,
	// before it is dead-lettered.
	MinAloneFailures int
	// MaxRetryAfter caps a Retry-After: the longest the gateway pauses sending to Laravel.
	MaxRetryAfter time.Duration
}

// itemRefusal reports the answers by which Laravel may refuse a batch because of one of its
// items: a malformed request, a body too large, a validation error. A batch answered so is split
// until the refused item is alone.
func itemRefusal(status int) bool {
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		return true
	}
	return false
}

// FailureLabel names an attempt's failure for metrics and logs: the HTTP status, or "network",
// "undecodable", "unaccounted".
func FailureLabel(a Attempt) string {
	switch a.Outcome {
	case OutcomeStatus:
		return strconv.Itoa(a.Status)
	case OutcomeNetwork:
		return "network"
	case OutcomeUndecodable:
		return "undecodable"
	case OutcomeDelivered:
		if a.Unaccounted > 0 {
			return "unaccounted"
		}
	}
	return ""
}

// Decide returns what to do with a batch after the attempt a.
func (p Policy) Decide(a Attempt) Decision {
	switch a.Outcome {
	case OutcomeAborted:
		return Decision{Action: ActionLeavePending, Breaker: MarkIgnore, Reason: "the gateway's own context ended"}
	case OutcomeRejected:
		if a.Final {
			return Decision{Action: ActionLeavePending, Breaker: MarkIgnore, Reason: "the breaker is open at shutdown"}
		}
		return Decision{Action: ActionRetry, Delay: p.Backoff.Delay(1, 0, a.Jitter), Breaker: MarkIgnore, Reason: "the breaker is open"}
	case OutcomeDelivered:
		return p.delivered(a)
	}

	d := Decision{Failure: FailureLabel(a), Breaker: MarkFailure}
	switch {
	case a.Outcome == OutcomeStatus && itemRefusal(a.Status):
		d.Breaker = MarkSuccess // Laravel is up and refused what it was sent
	case a.Outcome == OutcomeStatus && a.Status == http.StatusConflict:
		d.Breaker = MarkIgnore // the same key is still being processed: says nothing of Laravel's health
	}
	if a.Outcome == OutcomeStatus && a.RetryAfter > 0 {
		d.PauseAll = min(a.RetryAfter, p.MaxRetryAfter)
	}
	if a.Final {
		// The shutdown attempt never dead-letters or splits: what it cannot deliver stays pending.
		d.Action, d.PauseAll = ActionLeavePending, 0
		d.Reason = "not delivered by the final attempt at shutdown"
		return d
	}
	switch {
	case a.Outcome == OutcomeUndecodable:
		d.Reason = "Laravel answered 2xx with a body that cannot be decoded; replayed under the same key"
	case a.Outcome == OutcomeNetwork:
		d.Reason = "no answer from Laravel"
	case itemRefusal(a.Status):
		d.PauseAll = 0 // a refusal of what was sent, not a request to back off
		if a.Items > 1 {
			d.Action, d.Reason = ActionSplit, fmt.Sprintf("HTTP %d may be caused by one item: splitting to isolate it", a.Status)
			return d
		}
		d.Action, d.Reason = ActionDeadLetter, fmt.Sprintf("Laravel refused this item alone with HTTP %d", a.Status)
		return d
	case a.Status == http.StatusConflict:
		d.Reason = "the Idempotency-Key is still being processed; asked again later"
	case a.Status >= 500 && a.Status <= 599:
		if a.OthersDelivered && a.ServerErrorFor >= p.PoisonHorizon {
			if a.Items > 1 {
				d.Action, d.PauseAll = ActionSplit, 0
				d.Reason = fmt.Sprintf("HTTP %d for %s while other batches were delivered: splitting to isolate a poison item", a.Status, a.ServerErrorFor)
				return d
			}
			if a.AloneFailures >= p.MinAloneFailures {
				d.Action, d.PauseAll = ActionDeadLetter, 0
				d.Reason = fmt.Sprintf("HTTP %d for this item alone for %s (%d times in a row) while other batches were delivered", a.Status, a.ServerErrorFor, a.AloneFailures)
				return d
			}
		}
		d.Reason = fmt.Sprintf("HTTP %d from Laravel", a.Status)
	case a.Status >= 300 && a.Status <= 399:
		d.Reason = fmt.Sprintf("HTTP %d redirect: the Laravel URL is misconfigured (redirects are never followed)", a.Status)
	case a.Status == http.StatusUnauthorized || a.Status == http.StatusForbidden:
		d.Reason = fmt.Sprintf("HTTP %d: Laravel does not accept the gateway's token or signature (check WAGATE_LARAVEL_TOKEN, the secret and the clocks)", a.Status)
	default:
		d.Reason = fmt.Sprintf("HTTP %d from Laravel", a.Status)
	}
	return p.retry(a, d)
}

// retry turns d into a retry of the whole batch under the same key, or a requeue once the
// delivery budget is spent.
func (p Policy) retry(a Attempt, d Decision) Decision {
	if a.Age >= p.DeliveryTimeout {
		d.Action = ActionRequeue
		return d
	}
	d.Action = ActionRetry
	d.Delay = max(p.Backoff.Delay(a.Attempts, 0, a.Jitter), d.PauseAll)
	return d
}

// delivered decides a 2xx: the items Laravel accounted for are acknowledged, the ones it refused
// by name are dead-lettered, the ones it did not account for are sent again. The final attempt
// leaves both kinds pending instead.
func (p Policy) delivered(a Attempt) Decision {
	d := Decision{Action: ActionAck, Breaker: MarkSuccess, Reason: "Laravel accounted for every item"}
	if a.Refused > 0 {
		d.Reason = fmt.Sprintf("Laravel refused %d of %d items by name", a.Refused, a.Items)
		d.Refused = FateDeadLetter
		if a.Final {
			d.Refused = FateLeavePending
		}
	}
	if a.Unaccounted > 0 {
		d.Failure, d.Breaker = FailureLabel(a), MarkFailure
		d.Reason = fmt.Sprintf("Laravel's 2xx does not account for %d of %d items", a.Unaccounted, a.Items)
		d.Unaccounted = FateRetry
		d.Delay = p.Backoff.Delay(a.Attempts, 0, a.Jitter)
		if a.Final {
			d.Unaccounted, d.Delay = FateLeavePending, 0
		}
	}
	return d
}

// Accounting is how a 2xx answer accounts for the items of a batch.
type Accounting struct {
	// Refused maps the index of each item Laravel named in its errors to the error.
	Refused map[int]string
	// Unaccounted lists the indexes of the items the answer does not account for: when its counts
	// do not add up to the items sent, or it counts failures it does not name, every item it did
	// not name is unaccounted (the applied ones cannot be told apart).
	Unaccounted []int
}

// Account matches a 2xx answer to the session ids of the items sent (one item per session, as
// coalescing guarantees). The answer accounts for every item when updated + stale + failed equals
// the items sent and every failed item is named once in errors.
func Account(sessionIDs []string, res laravel.BatchResult) Accounting {
	index := make(map[string]int, len(sessionIDs))
	for i, sid := range sessionIDs {
		index[sid] = i
	}
	acc := Accounting{Refused: map[int]string{}}
	for _, e := range res.Errors {
		if i, ok := index[e.SessionID]; ok {
			if _, dup := acc.Refused[i]; !dup {
				acc.Refused[i] = e.Error
			}
		}
	}
	named := len(acc.Refused)
	if res.Updated >= 0 && res.Stale >= 0 && res.Updated+res.Stale+res.Failed == len(sessionIDs) &&
		res.Failed == named && len(res.Errors) == named {
		return acc
	}
	for i := range sessionIDs {
		if _, ok := acc.Refused[i]; !ok {
			acc.Unaccounted = append(acc.Unaccounted, i)
		}
	}
	return acc
}
