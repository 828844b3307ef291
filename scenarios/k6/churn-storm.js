// churn-storm (k6 script): ../churn-storm.yaml's world and fault schedule (drop everyone at 50 s,
// replace a fifth at 75 s, log out a tenth at 95 s, Laravel 503s at 100 s, a WhatsApp restart at
// 120 s, timed from the start of the run) with its users written in JavaScript: 60 accounts with
// sessions of 30-90 s (a third end in a logout), drops, replaced streams and removed devices,
// 2 status pollers each polling every 2 s; 10% of the scans miss, as the YAML users'.
//
//   bin/simulator run scenarios/k6/churn-storm.js
//
// -e DURATION=40s shortens the run (e.g. for a quick look); -set warmup=10s then too.
import { user, poller } from "./lib/laravel-app.js";

const behaviour = {
  prefix: "storm",
  users: 60,
  startDelayMax: 15,
  scanDelay: [1, 4],
  scanSuccess: 0.9,
  giveUpAfter: 60,
  sessionLifetime: [30, 90],
  logoutAtEnd: 0.35,
  messagesPerMinute: 4,
  dropsPerHour: 30,
  replacedPerHour: 4,
  remoteLogoutsPerHour: 4,
  statusPollInterval: 2,
  qrPollInterval: 2,
};

export const options = {
  ext: { wagate: { world: __ENV.WAGATE_WORLD || "../churn-storm.yaml" } },
  scenarios: {
    churn: { executor: "constant-vus", vus: 60, duration: __ENV.DURATION || "2m30s", gracefulStop: "10s", exec: "account" },
    pollers: { executor: "constant-vus", vus: 120, duration: __ENV.DURATION || "2m30s", gracefulStop: "10s", exec: "poll" },
  },
  thresholds: {
    lost_updates: ["count==0"],
    stale_overwrites: ["count==0"],
    duplicate_applications: ["count==0"],
    "event_delivery_delay{priority:high}": ["p(95)<1000"],
    wagate_pairings: ["count>0"],
  },
};

export function account() {
  user(behaviour);
}

export function poll() {
  poller(behaviour);
}
