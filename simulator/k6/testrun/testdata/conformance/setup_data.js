// setup()'s result reaches every VU and teardown as a JSON copy: a VU's mutations stay its own.
import { check } from "k6";
import { Counter } from "k6/metrics";

const teardownSaw = new Counter("teardown_saw_token");

export const options = { vus: 2, iterations: 4 };

export function setup() {
  return { token: "abc", list: [1, 2, 3], when: new Date(0) };
}

export default function (data) {
  check(data, {
    "token arrives": (d) => d.token === "abc",
    "only this VU's own mutations": (d) => d.list.length === 3 - __ITER,
    "dates become strings": (d) => typeof d.when === "string",
  });
  data.list.pop();
}

export function teardown(data) {
  if (data.token === "abc" && data.list.length === 3) teardownSaw.add(1);
}
