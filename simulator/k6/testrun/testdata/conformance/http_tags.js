// http_req_* samples carry k6's system tags (name, method, status, scenario, group,
// expected_response), params.tags, and http_req_failed honours expectedStatuses.
import http from "k6/http";
import { group } from "k6";

http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }, 404));

export const options = {
  iterations: 2,
  tags: { team: "wa" },
  thresholds: {
    "http_reqs{name:fetch-ok,method:GET,status:200,scenario:default,team:wa}": ["count==2"],
    "http_reqs{group:::api,method:POST}": ["count==2"],
    "http_reqs{status:404,expected_response:true}": ["count==2"],
    "http_reqs{status:500,expected_response:false}": ["count==2"],
    "http_reqs{kind:custom}": ["count==2"],
    http_req_failed: ["rate==0.25"],
    http_reqs: ["count==8"],
  },
};

export default function () {
  http.get(`${__ENV.BASE}/status/200`, { tags: { name: "fetch-ok", kind: "custom" } });
  group("api", () => {
    const res = http.post(`${__ENV.BASE}/anything`, JSON.stringify({ a: 1 }), {
      headers: { "Content-Type": "application/json" },
    });
    if (res.json("json.a") !== 1) throw new Error("echo lost the JSON body");
  });
  http.get(`${__ENV.BASE}/status/404`);
  http.del(`${__ENV.BASE}/status/500`);
}
