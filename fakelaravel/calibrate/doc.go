// Package calibrate measures a Laravel implementation of the wagate contract under a bounded
// loopback load and fits fakelaravel's CapacityModel to it.
//
// It owns three things: the load generator (closed loop: N clients back to back; open loop:
// Poisson arrivals at a fixed rate, k6's constant-arrival-rate with dropped iterations), the
// measurement plan (per request kind: saturation throughput, latency at 50% and 80% of it,
// behaviour at 2x overload, plus the server's CPU per request read from /proc), and the fit
// and comparison (cores, bootstrap, GET lookup and per-row CPU, jitter; then the same plan against an
// in-process fakelaravel with the fitted model, side by side; calibration.md is Report.Outline, on the
// reports' document model, laid out as Markdown). Every run is bounded in time and
// in request count, and uses only loopback addresses. The binary is
// wagate/fakelaravel/calibrate/cmd/calibrate-laravel (`make calibrate-laravel`).
package calibrate
