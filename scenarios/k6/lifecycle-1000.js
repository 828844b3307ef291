// lifecycle-1000 (k6 script): lifecycle-1000.yaml's session lifecycle written for k6 over
// k6/x/wagate, the JavaScript half of the k6 cost bench (`make bench-k6`: `bin/simulator k6-cost
// scenarios/k6/lifecycle-1000.js` runs the YAML's native Go users and then this script on one
// world, and compares the load generator's CPU per gateway API request and memory per VU).
// Each VU is one account: it starts its session (arriving over 30 s), pairs the phone with the QR
// code Laravel received, sends about a message a minute and logs out after 60 s; the app's status
// poller polls every 2 s from the start to the logout, as the YAML users' poller goroutines do.
// By default the VU polls from its own loop, as a k6 user writes it: while its phone pairs too
// (wagate.startPair returns at once and the loop polls between wagate.waitPair's waits), so both
// halves make the same requests. -e POLLS=background hands the polls to k6/x/wagate's background
// poller (startPolling, a Go poller per session, as the native users'), leaving the VU the person.
//
//   bin/simulator run scenarios/k6/lifecycle-1000.js -e USERS=50     (the script alone)
import { user } from "./lib/laravel-app.js";

const users = Number(__ENV.USERS || 1000);

const behaviour = {
  prefix: "js",
  users,
  startDelayMax: 30,
  scanDelay: [1, 3],
  giveUpAfter: 60,
  sessionLifetime: [60, 60],
  logoutAtEnd: 1,
  messagesPerMinute: 1,
  statusPollInterval: 2,
  backgroundPolls: __ENV.POLLS === "background",
  pollsInline: __ENV.POLLS !== "background",
};

export const options = {
  ext: { wagate: { world: __ENV.WAGATE_WORLD || "lifecycle-1000.yaml" } },
  scenarios: {
    users: { executor: "per-vu-iterations", vus: users, iterations: 1, maxDuration: "2m30s", gracefulStop: "10s" },
  },
  thresholds: {
    wagate_pairings: [`count>=${Math.ceil(users * 0.95)}`],
    lost_updates: ["count==0"],
    stale_overwrites: ["count==0"],
  },
};

export default function () {
  user(behaviour);
}
