// Every redirect hop is its own http_reqs sample; redirects: 0 returns the 302 itself.
import http from "k6/http";
import { check } from "k6";

export const options = {
  iterations: 1,
  thresholds: { http_reqs: ["count==5"], "http_reqs{status:302}": ["count==4"] },
};

export default function () {
  const res = http.get(`${__ENV.BASE}/redirect/3`);
  check(res, {
    "followed to the end": (r) => r.status === 200 && r.url.endsWith("/anything"),
  });
  const first = http.get(`${__ENV.BASE}/redirect/2`, { redirects: 0 });
  check(first, { "not followed": (r) => r.status === 302 && r.headers["Location"] === "/redirect/1" });
}
