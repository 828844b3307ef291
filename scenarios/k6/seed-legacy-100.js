// seed-legacy-100 (k6 script): the YAML scenario's workload (lib/seed.js) over its world
// (../seed-legacy-100.yaml: legacy gateway, 4-core fakelaravel; see its derivation of 40,000
// Laravel requests/min). 100 accounts pair, send a message a minute and receive 2 from their
// customers; 1,000 status pollers (10 per account) poll every second in a closed loop; 5% of the
// scans miss and wait for the next code, and the app polls GET /sessions/{id}/qr every 2 s while its
// user pairs, as the YAML users'.
//
//   bin/simulator run scenarios/k6/seed-legacy-100.js     (seed-batch-100.js: the same in batch mode)
//
// -e DURATION=40s shortens the run (e.g. for a quick look); -set warmup=10s then too.
import { seedOptions } from "./lib/seed.js";

export { account, poll } from "./lib/seed.js";

export const options = seedOptions("../seed-legacy-100.yaml", {
  laravel_requests_per_minute: ["value>36000", "value<44000"],
  http_req_duration: ["avg>250", "avg<750"],
  lost_updates: ["count==0"],
  stale_overwrites: ["count==0"],
});
