// Package processtest holds the process-level test of batch delivery: the real gateway binary
// in batch mode with a real redis-server (AOF), fakewa and fakelaravel as processes; the gateway
// is SIGKILLed while Laravel is down and must, after a restart, leave Laravel with the last version
// of every session's state; and SIGKILLed in the middle of a burst of customers' messages, after
// which Laravel must store every message once, each chat in order; and refused or SIGKILLed while
// the receipts of the messages it sent come back, after which every message must end read in
// Laravel, in one row, with no receipt left unacknowledged in fakewa. It has no non-test code.
package processtest
