// exec.test.abort() stops the test with exit code 108, even in the middle of a long run.
import exec from "k6/execution";
import { sleep } from "k6";

export const options = { vus: 2, duration: "60s" };

export default function () {
  if (exec.scenario.iterationInTest >= 3) {
    exec.test.abort("enough");
  }
  sleep(0.05);
}
