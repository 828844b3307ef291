import http from "k6/http";
import { check, group, sleep } from "k6";
import { Counter, Trend } from "k6/metrics";
import { helper } from "./lib/helper.js";

const things = new Counter("things_done");
const sizes = new Trend("body_sizes");

export const options = {
  vus: 2,
  iterations: 6,
  thresholds: {
    checks: ["rate==1"],
    "http_reqs{name:status}": ["count==6"],
    things_done: ["count==6"],
  },
};

export default function () {
  group("api", () => {
    const res = http.get(`${__ENV.BASE}/status/200`, { tags: { name: "status" } });
    check(res, { "status is 200": (r) => r.status === 200, [helper()]: () => true });
    sizes.add(res.body.length);
  });
  things.add(1);
}
