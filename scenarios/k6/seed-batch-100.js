// seed-batch-100 (k6 script): seed-legacy-100.js's workload over ../seed-batch-100.yaml's world
// (batch delivery and the cache; same users, pollers and Laravel), with that scenario's thresholds.
//
//   bin/simulator run scenarios/k6/seed-batch-100.js
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
  ext: { wagate: { world: __ENV.WAGATE_WORLD || "../seed-batch-100.yaml" } },
  // gracefulStop 0s: an account stops when the duration ends, as the YAML users do (their
  // sessions last an hour, so waiting would only add idle seconds to the measured window).
  scenarios: {
    users: { executor: "per-vu-iterations", vus: 100, iterations: 1, maxDuration: __ENV.DURATION || "2m", gracefulStop: "0s", exec: "account" },
    pollers: { executor: "constant-vus", vus: 1000, duration: __ENV.DURATION || "2m", gracefulStop: "10s", exec: "poll" },
  },
  thresholds: {
    laravel_requests_per_minute: ["value<4000"],
    "http_req_duration{endpoint:status}": ["p(99)<10"],
    "event_delivery_delay{priority:high}": ["p(99)<1000"],
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
