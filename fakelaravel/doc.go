// Package fakelaravel is a stand-in for the Laravel application the wagate gateway reports to. It
// implements the contract of wagate/gateway/laravel (legacy and batch endpoints, bearer token,
// Idempotency-Key, optional HMAC body signature, Laravel-shaped errors) on a SQLite database with
// the schema a Laravel app would have, and it models the capacity of PHP-FPM behind nginx
// (CapacityModel: workers, cores, CPU per request, backlog, proxy timeout) so that a gateway that
// sends too many requests sees what a real Laravel would do: queueing, then 502s and 504s.
//
// Around the contract it offers what a test harness needs: faults set at start or at runtime,
// observation (per-endpoint stats, the final state of every session for ground-truth comparison,
// Prometheus /metrics) and an AdminClient for the token-protected admin API under /_fake/.
// GET /_fake/state answers every session; GET /_fake/state?since=N (AdminClient.GetStateSince)
// answers only the sessions whose row changed after cursor N, with the next cursor: a change
// feed numbered by triggers in the writing transaction, so a reader polling it loses no change
// (changes.go, StateChanges). A reader of 10,000 sessions gets a few rows instead of 5 MB.
//
// # Faults
//
// Faults (Config.Faults, PUT /_fake/faults, AdminClient.SetFaults, the -fault-windows flag) are
// the production faults a gateway must survive without losing an update. Its flat fields are
// always on (error rate with a status, extra latency, lost responses, down windows); Windows are
// timed faults, each a FaultWindow: a kind, a start and a duration counted from when the faults
// are set (0: until replaced), a rate, optionally endpoints, and the kind's parameters:
//
//   - status: answer any status in 300-599 instead of processing (nothing applied), optionally
//     with a Retry-After of any size, in seconds or as an HTTP-date; a 3xx names a Location on
//     another loopback host (DefaultRedirectLocation), which a client must not follow.
//   - latency: hold the worker longer. down: refuse connections.
//   - lost_response: apply the write, then drop the connection or answer 200 with no body.
//   - garbage_body: apply the write, then answer 200 with a body that is not JSON.
//   - unaccounted_failures: apply a batch except some items, answering "failed": N with fewer
//     than N named "errors" (the left-out items are not applied).
//   - refuse_items: refuse the items of chosen sessions (listed, or a seeded share of session
//     ids, FaultWindow.RefusesSession) one by one in a 200, named with RefusedItemError and not
//     applied (a legacy write: 422 naming session_id): the only items a gateway may
//     dead-letter. Each is recorded in Refusals (GET /_fake/refusals, AdminClient.GetRefusals)
//     by session, endpoint and version.
//
// The item faults (the last two) change only the fake's own application: in front of a real app
// they are refused. A batch's answer, faults included, is stored under its Idempotency-Key,
// so a retry with the same key gets the same answer (garbled and lost answers excepted: their
// retry gets the real one). Every request a fault changed is counted in Stats.Injected by
// InjectedKey ("status:503", "garbage_body", ...) and in fakelaravel_injected_faults_total; a
// connection refused by a down window while served by Serve never reaches the handler and is not
// counted.
//
// With Config.Upstream a Server is instead the measuring front of a real Laravel app: it forwards
// /api unchanged, records it in the same Stats, reads /_fake/state from the app's database and
// still injects faults, so a harness observes the real app exactly as it observes the fake. The
// real app's database has no change feed: there ?since=N always answers a full snapshot with
// cursor 0, and a polling reader falls back to full reads.
//
// A Server is an http.Handler; Serve runs it on a listener it can take down for down windows.
// The conformance check that verifies any implementation of the contract lives in
// wagate/fakelaravel/conform; the binary in wagate/fakelaravel/cmd/fakelaravel.
package fakelaravel
