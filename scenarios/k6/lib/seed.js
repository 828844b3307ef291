// The seed's workload (../../seed-legacy-100.yaml derives it: 100 accounts that pair, send a
// message a minute and receive 2 from their customers, 1,000 status pollers, 10 per account,
// polling every second in a closed loop), shared by seed-legacy-100.js and seed-batch-100.js, which differ only in their world and
// thresholds.
import { user, poller } from "./laravel-app.js";

export const behaviour = {
  prefix: "seed",
  users: 100,
  startDelayMax: 20,
  scanDelay: [2, 6],
  scanSuccess: 0.95,
  giveUpAfter: 90,
  sessionLifetime: [3600, 3600],
  logoutAtEnd: 0,
  messagesPerMinute: 1,
  // The customers' messages (2 a minute per account, 30% replies), most of the seed's Laravel
  // traffic in batch mode with the receipts of the app's messages.
  incomingMessagesPerMinute: 2,
  replies: 0.3,
  statusPollInterval: 1,
  qrPollInterval: 2,
};

// seedOptions are a seed script's options: world is the scenario YAML whose world it drives
// (relative to the script; WAGATE_WORLD overrides it), thresholds its own; -e DURATION=40s
// shortens the run.
export function seedOptions(world, thresholds) {
  const duration = __ENV.DURATION || "2m";
  return {
    ext: { wagate: { world: __ENV.WAGATE_WORLD || world } },
    // gracefulStop 0s: an account stops when the duration ends, as the YAML users do (their
    // sessions last an hour, so waiting would only add idle seconds to the measured window).
    scenarios: {
      users: { executor: "per-vu-iterations", vus: behaviour.users, iterations: 1, maxDuration: duration, gracefulStop: "0s", exec: "account" },
      pollers: { executor: "constant-vus", vus: behaviour.users * 10, duration, gracefulStop: "10s", exec: "poll" },
    },
    thresholds,
  };
}

// account is one account's VU; poll one status poller's.
export function account() {
  user(behaviour);
}

export function poll() {
  poller(behaviour);
}
