// Two scenarios with their own exec function, env, tags and executors.
import { Counter } from "k6/metrics";
import exec from "k6/execution";

const calls = new Counter("calls");

export const options = {
  scenarios: {
    readers: { executor: "per-vu-iterations", vus: 2, iterations: 3, exec: "read", env: { KIND: "r" }, tags: { role: "reader" } },
    writers: { executor: "shared-iterations", vus: 1, iterations: 2, exec: "write", startTime: "100ms", env: { KIND: "w" } },
  },
  thresholds: {
    "calls{scenario:readers,role:reader,kind:r}": ["count==6"],
    "calls{scenario:writers,kind:w,executor:shared-iterations}": ["count==2"],
    "iterations{scenario:readers}": ["count==6"],
    "iterations{scenario:writers}": ["count==2"],
  },
};

export function read() {
  calls.add(1, { kind: __ENV.KIND });
}

export function write() {
  calls.add(1, { kind: __ENV.KIND, executor: exec.scenario.executor });
}

export default function () {
  throw new Error("default must not run when every scenario has exec");
}
