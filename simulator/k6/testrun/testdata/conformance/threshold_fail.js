// A threshold that cannot hold: the run ends with exit code 99 and the summary says which.
import http from "k6/http";

export const options = {
  iterations: 3,
  thresholds: {
    http_req_failed: ["rate<0.1"],
    "http_reqs{status:500}": ["count<1"],
    http_req_duration: ["p(95)<60000"],
  },
};

export default function () {
  http.get(`${__ENV.BASE}/status/500`);
}
