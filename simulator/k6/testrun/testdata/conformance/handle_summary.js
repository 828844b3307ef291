// handleSummary receives k6's summary data and decides where it goes; textSummary is built in.
import { textSummary } from "https://jslib.k6.io/k6-summary/0.0.2/index.js";
import { randomIntBetween, uuidv4 } from "https://jslib.k6.io/k6-utils/1.4.0/index.js";
import { check } from "k6";

export const options = { iterations: 2 };

export default function () {
  const n = randomIntBetween(1, 3);
  check(n, { "in range": (v) => v >= 1 && v <= 3, "uuid shape": () => uuidv4().length === 36 });
}

export function handleSummary(data) {
  return {
    stdout: textSummary(data, { indent: " ", enableColors: false }),
    [__ENV.OUT_FILE]: JSON.stringify({ iterations: data.metrics.iterations.values.count, checks: data.root_group.checks.length }),
  };
}
