export function helper() {
  return "helper imported";
}
