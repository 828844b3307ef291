// The hosts option routes a real-looking name to the loopback HTTPS stand-in.
import http from "k6/http";
import { check } from "k6";

export const options = {
  iterations: 1,
  hosts: { "httpbin.test": __ENV.TLS_ADDR },
  insecureSkipTLSVerify: true,
};

export default function () {
  const res = http.get("https://httpbin.test/json");
  check(res, {
    "served over TLS": (r) => r.status === 200 && r.tls_version.startsWith("tls1."),
    "HTTP/2": (r) => r.proto === "HTTP/2.0",
    "json selector": (r) => r.json("slideshow.slides.1.title") === "two" && r.json("slideshow.slides.#") === 2,
  });
  const auth = http.get(`https://user:secret@httpbin.test/basic-auth/user/secret`);
  check(auth, { "basic auth from the URL": (r) => r.status === 200 && r.json().user === "user" });
}
