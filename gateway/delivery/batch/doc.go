// Package batch owns the gateway's batch delivery mode (the seed's "after"): events are appended
// durably to the Redis Streams outbox (package outbox) and a flusher per gateway reads them through
// the consumer group, coalesces them per session and kind (latest version wins; the superseded
// entries are acknowledged at once, their winner being durable in the outbox), and sends them to
// Laravel's batch endpoints in batches of at most BatchSize items, on size, on time (BatchInterval
// since the oldest waiting item) or on priority (a HIGH event, within PriorityInterval, taking the
// waiting statuses along, and the other kinds once they waited half their interval: FlushTakes).
// Entries are acknowledged only after a 2xx that accounts for them.
//
// What happens after each send is decided by a pure function, Policy.Decide (policy.go, stated
// row by row in docs/batch-delivery.md): dead letters only for items Laravel refused one by one;
// every other failure is retried under the same Idempotency-Key with backoff, counted by the
// circuit breaker (Breaker) and by status in the metrics; a Retry-After pauses every send.
//
// The pieces are separate and each counts what it does, one file each: the coalescer (Coalescer,
// coalescer.go), the policy (Policy, policy.go), the retry spacing (Backoff, retry.go), the breaker
// (Breaker, breaker.go), the retry budget (package retrybudget: retries add at most a share of the
// first attempts plus a floor per second; a retry it refuses waits) and the flusher (Delivery, delivery.go), which only executes the policy's
// decisions; metrics.go holds its counters and admin views; settle.go lets a cluster handover wait
// for the flusher's sends in progress.
package batch
