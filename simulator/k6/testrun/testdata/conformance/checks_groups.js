// Checks pass and fail per name inside nested groups; group() returns its function's value.
import http from "k6/http";
import { check, group } from "k6";

// Two VUs with two iterations each, so __ITER is 0 and 1 on each.
export const options = { scenarios: { default: { executor: "per-vu-iterations", vus: 2, iterations: 2 } } };

export default function () {
  const got = group("outer", () => {
    group("inner", () => {
      const res = http.get(`${__ENV.BASE}/status/200`);
      check(res, { "inner ok": (r) => r.status === 200 });
    });
    check(__ITER, { "even iteration": (i) => i % 2 === 0 });
    return 42;
  });
  check(got, { "group returns the value": (v) => v === 42 });
}
