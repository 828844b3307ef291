// async functions work when everything they await settles within the call (no event loop): the
// default function's and setup's promises are unwrapped, a rejection is the iteration's exception.
import { Counter } from "k6/metrics";

const ok = new Counter("async_ok");
export const options = { iterations: 2, thresholds: { async_ok: ["count==1"] } };

async function value(x) {
  return x * 2;
}

export async function setup() {
  return { base: await value(21) };
}

export default async function (data) {
  const v = await value(data.base);
  if (__ITER === 1) throw new Error(`async failure after ${v}`);
  ok.add(v === 84 ? 1 : 0);
}
