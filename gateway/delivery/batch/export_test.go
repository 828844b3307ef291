package batch

import "wagate/gateway/outbox"

// Getters the tests use (here and in package batch_test) and the gateway does not.

// Outbox returns the outbox the delivery appends to.
func (d *Delivery) Outbox() *outbox.Outbox { return d.ob }

// Breaker returns the circuit breaker.
func (d *Delivery) Breaker() *Breaker { return d.breaker }
