// Package fakelaravel is a stand-in for the Laravel application the wagate gateway reports to. It
// implements the contract of wagate/gateway/laravel (legacy and batch endpoints, bearer token,
// Idempotency-Key, optional HMAC body signature, Laravel-shaped errors) on a SQLite database with
// the schema a Laravel app would have, and it models the capacity of PHP-FPM behind nginx
// (CapacityModel: workers, cores, CPU per request, backlog, proxy timeout) so that a gateway that
// sends too many requests sees what a real Laravel would do: queueing, then 502s and 504s.
//
// Around the contract it offers what a test harness needs: faults set at start or at runtime
// (error rate with a chosen status, extra latency, down windows with refused connections,
// responses lost after the write was applied), observation (per-endpoint stats, the final state
// of every session for ground-truth comparison, Prometheus /metrics) and an AdminClient for the
// token-protected admin API under /_fake/.
//
// With Config.Upstream a Server is instead the measuring front of a real Laravel app: it forwards
// /api unchanged, records it in the same Stats, reads /_fake/state from the app's database and
// still injects faults, so a harness observes the real app exactly as it observes the fake.
//
// A Server is an http.Handler; Serve runs it on a listener it can take down for down windows.
// The conformance check that verifies any implementation of the contract lives in
// wagate/fakelaravel/conform; the binary in wagate/fakelaravel/cmd/fakelaravel.
package fakelaravel
