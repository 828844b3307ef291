// k6 options this runtime does not know run anyway, with a warning naming them.
import { check } from "k6";

export const options = { iterations: 1, rps: 5, noConnectionReuse: true, thresholds: { checks: ["rate==1"] } };

export default function () {
  check(__ITER, { "ran": (i) => i === 0 });
}
