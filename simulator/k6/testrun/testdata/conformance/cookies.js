// The VU's cookie jar keeps cookies within an iteration and is reset between iterations.
import http from "k6/http";
import { check } from "k6";

export const options = { vus: 1, iterations: 3 };

export default function () {
  const before = http.get(`${__ENV.BASE}/cookies`).json("cookies");
  check(before, { "jar empty at iteration start": (c) => Object.keys(c).length === 0 });
  http.get(`${__ENV.BASE}/cookies/set?session=${__ITER}`);
  const after = http.get(`${__ENV.BASE}/cookies`).json("cookies");
  check(after, { "cookie kept within the iteration": (c) => c.session === String(__ITER) });
  const jar = http.cookieJar();
  check(jar.cookiesForURL(__ENV.BASE), { "jar API sees it": (c) => c.session[0] === String(__ITER) });
}
