// abortOnFail stops a 60 s test as soon as the failing threshold is evaluated (2 s tick).
import http from "k6/http";
import { sleep } from "k6";

export const options = {
  vus: 1,
  duration: "60s",
  thresholds: { http_req_failed: [{ threshold: "rate==0", abortOnFail: true }] },
};

export default function () {
  http.get(`${__ENV.BASE}/status/503`);
  sleep(0.1);
}
