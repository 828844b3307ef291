// Iterations still running when a scenario ends (after gracefulStop) are interrupted and not
// counted, as in k6.
import { sleep } from "k6";

export const options = {
  scenarios: { slow: { executor: "constant-vus", vus: 2, duration: "1s", gracefulStop: "0s" } },
};

export default function () {
  sleep(30);
}
