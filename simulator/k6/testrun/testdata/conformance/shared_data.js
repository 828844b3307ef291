// open() reads files next to the script in the init context; SharedArray builds its data once
// and hands every VU a frozen copy; k6/encoding round-trips base64.
import { SharedArray } from "k6/data";
import encoding from "k6/encoding";
import { check } from "k6";
import { Counter } from "k6/metrics";

const builds = new Counter("array_builds");
let builtHere = 0;
const users = new SharedArray("users", () => {
  builtHere++;
  return JSON.parse(open("./lib/users.json"));
});
const raw = open("./lib/users.json", "b");

export const options = { vus: 3, iterations: 3 };

export default function () {
  builds.add(builtHere);
  check(users, {
    "loaded": (u) => u.length === 2 && u[1].name === "bob",
    "frozen": (u) => {
      try {
        u[0].name = "mallory";
      } catch (e) {
        return u[0].name === "alice";
      }
      return false;
    },
    "binary open": () => raw.byteLength > 10,
    "b64 round trip": () => encoding.b64decode(encoding.b64encode("héllo"), "std", "s") === "héllo",
    "b64 url": () => encoding.b64encode("??>", "rawurl") === "Pz8-",
  });
}
