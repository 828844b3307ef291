// seed-legacy-100 (k6 script): the YAML scenario's workload over its world (../seed-legacy-100.yaml:
// legacy gateway, 4-core fakelaravel; see its derivation of 40,000 Laravel requests/min). 100
// accounts pair and send a message a minute; 1,000 status pollers (10 per account) poll every
// second in a closed loop. Differences from the YAML users: every scan succeeds, and the app does
// not poll GET /sessions/{id}/qr while its user pairs (a few seconds of 2 minutes).
//
//   bin/simulator run scenarios/k6/seed-legacy-100.js     (seed-batch-100.js: the same in batch mode)
//
// -e DURATION=40s shortens the run (e.g. for a quick look); -set warmup=10s then too.
import { user, poller } from "./lib/laravel-app.js";

const behaviour = {
  prefix: "seed",
  users: 100,
  startDelayMax: 20,
  scanDelay: [2, 6],
  giveUpAfter: 90,
  sessionLifetime: [3600, 3600],
  logoutAtEnd: 0,
  messagesPerMinute: 1,
  statusPollInterval: 1,
};

export const options = {
  ext: { wagate: { world: __ENV.WAGATE_WORLD || "../seed-legacy-100.yaml" } },
  // gracefulStop 0s: an account stops when the duration ends, as the YAML users do (their
  // sessions last an hour, so waiting would only add idle seconds to the measured window).
  scenarios: {
    users: { executor: "per-vu-iterations", vus: 100, iterations: 1, maxDuration: __ENV.DURATION || "2m", gracefulStop: "0s", exec: "account" },
    pollers: { executor: "constant-vus", vus: 1000, duration: __ENV.DURATION || "2m", gracefulStop: "10s", exec: "poll" },
  },
  thresholds: {
    laravel_requests_per_minute: ["value>36000", "value<44000"],
    http_req_duration: ["avg>250", "avg<750"],
    lost_updates: ["count==0"],
    stale_overwrites: ["count==0"],
  },
};

export function account() {
  user(behaviour);
}

export function poll() {
  poller(behaviour);
}
