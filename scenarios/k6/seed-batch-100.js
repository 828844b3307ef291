// seed-batch-100 (k6 script): seed-legacy-100.js's workload (lib/seed.js) over
// ../seed-batch-100.yaml's world (batch delivery and the cache; same users, pollers and Laravel),
// with that scenario's thresholds.
//
//   bin/simulator run scenarios/k6/seed-batch-100.js
//
// -e DURATION=40s shortens the run (e.g. for a quick look); -set warmup=10s then too.
import { seedOptions } from "./lib/seed.js";

export { account, poll } from "./lib/seed.js";

export const options = seedOptions("../seed-batch-100.yaml", {
  laravel_requests_per_minute: ["value<4000"],
  "http_req_duration{endpoint:status}": ["p(99)<10"],
  "event_delivery_delay{priority:high}": ["p(99)<1000"],
  lost_updates: ["count==0"],
  stale_overwrites: ["count==0"],
  messages_lost: ["count==0"],
  messages_duplicated: ["count==0"],
  messages_out_of_order: ["count==0"],
});
