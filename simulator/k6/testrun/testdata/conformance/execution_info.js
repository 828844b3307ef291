// k6/execution describes the VU, the scenario and the test; __VU and __ITER match it.
import exec from "k6/execution";
import { check } from "k6";

export const options = { scenarios: { only: { executor: "per-vu-iterations", vus: 2, iterations: 2 } } };

export default function () {
  check(exec, {
    "vu id is __VU": (e) => e.vu.idInTest === __VU && __VU >= 1 && __VU <= 2,
    "iteration is __ITER": (e) => e.vu.iterationInScenario === __ITER,
    "scenario name": (e) => e.scenario.name === "only" && e.scenario.executor === "per-vu-iterations",
    "progress is a share": (e) => e.scenario.progress >= 0 && e.scenario.progress < 0.01,
    "options visible": (e) => e.test.options.scenarios.only.vus === 2,
    "tags include scenario": (e) => e.vu.tags.scenario === "only",
  });
}
