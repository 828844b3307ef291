// TypeScript: types are stripped; relative imports of .ts files work.
import { check } from "k6";
import { double, type Pair } from "./lib/math.ts";

export const options = { iterations: 1, thresholds: { checks: ["rate==1"] } };

export default function (): void {
  const p: Pair = { a: 2, b: 3 };
  check(p, { "typed helper": (x: Pair) => double(x.a) + x.b === 7 });
}
