// Transport errors give status 0, error and error_code (1050 timeout, 1212 refused) and count as
// failed requests; HTTP errors get 1000+status.
import http from "k6/http";
import { check } from "k6";

export const options = { iterations: 1, thresholds: { http_req_failed: ["rate==1"], "http_reqs{error_code:1050}": ["count==1"] } };

export default function () {
  const slow = http.get(`${__ENV.BASE}/delay/2000`, { timeout: "100ms" });
  check(slow, { "timeout": (r) => r.status === 0 && r.error_code === 1050 && r.error !== "" });
  const refused = http.get("http://127.0.0.1:1/");
  check(refused, { "refused": (r) => r.status === 0 && r.error_code === 1212 });
  const missing = http.head(`${__ENV.BASE}/status/404`);
  check(missing, { "404": (r) => r.status === 404 && r.error_code === 1404 && r.body === "" });
}
