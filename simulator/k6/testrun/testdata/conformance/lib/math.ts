export interface Pair {
  a: number;
  b: number;
}
export function double(n: number): number {
  return n * 2;
}
