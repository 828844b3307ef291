// Script options are overridden by K6_* environment variables and CLI flags.
import { Counter } from "k6/metrics";
const runs = new Counter("runs");
export const options = { vus: 1, iterations: 1 };
export default function () {
  runs.add(1);
}
