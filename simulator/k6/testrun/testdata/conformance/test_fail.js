// exec.test.fail() marks the test failed but lets it finish: every iteration runs, exit code 110.
import exec from "k6/execution";
import { Counter } from "k6/metrics";

const done = new Counter("done");
export const options = { iterations: 3, thresholds: { done: ["count==3"] } };

export default function () {
  if (__ITER === 0) exec.test.fail("a condition the script judges fatal");
  done.add(1);
}
