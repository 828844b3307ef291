// http.batch runs requests given as URLs, arrays or objects, in an array or by name, and returns
// the responses in the same shape; each is its own sample.
import http from "k6/http";
import { check } from "k6";

export const options = { iterations: 1, thresholds: { http_reqs: ["count==5"], "http_reqs{name:named}": ["count==1"] } };

export default function () {
  const list = http.batch([
    `${__ENV.BASE}/status/200`,
    ["POST", `${__ENV.BASE}/anything`, "a=1", { headers: { "Content-Type": "application/x-www-form-urlencoded" } }],
    { method: "PUT", url: `${__ENV.BASE}/anything`, body: { b: ["2", "3"] } },
  ]);
  check(list, {
    "three responses in order": (r) => r.length === 3 && r[0].status === 200 && r[1].json("form.a.0") === "1",
    "object bodies are form-encoded": (r) => r[2].json("method") === "PUT" && r[2].json("form.b.1") === "3",
  });
  const named = http.batch({
    first: { method: "GET", url: `${__ENV.BASE}/status/201`, params: { tags: { name: "named" } } },
    second: `${__ENV.BASE}/status/204`,
  });
  check(named, { "by name": (r) => r.first.status === 201 && r.second.status === 204 });
}
