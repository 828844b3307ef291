// A throwing setup() is a script exception (exit 107); no iteration runs.
import { Counter } from "k6/metrics";
const ran = new Counter("ran");
export const options = { iterations: 2 };
export function setup() {
  throw new Error("setup failed on purpose");
}
export default function () {
  ran.add(1);
}
