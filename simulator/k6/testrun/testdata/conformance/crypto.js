// k6/crypto: hashes by name with an output encoding, HMAC, incremental hashes (createHash,
// createHMAC), random bytes; an algorithm the runtime lacks throws naming it.
import crypto from "k6/crypto";
import { check } from "k6";

export const options = { iterations: 1, thresholds: { checks: ["rate==1"] } };

export default function () {
  check(null, {
    "sha256 hex": () => crypto.sha256("hello", "hex") === "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
    "md5 hex": () => crypto.md5("hello", "hex") === "5d41402abc4b2a76b9719d911017c592",
    "sha256 base64 of nothing": () => crypto.sha256("", "base64") === "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
    "hmac sha256": () =>
      crypto.hmac("sha256", "key", "The quick brown fox jumps over the lazy dog", "hex") ===
      "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8",
    "incremental hash": () => crypto.createHash("sha1").update("hel").update("lo").digest("hex") === crypto.sha1("hello", "hex"),
    "incremental hmac": () =>
      crypto.createHMAC("sha256", "key").update("The quick brown fox ").update("jumps over the lazy dog").digest("hex") ===
      crypto.hmac("sha256", "key", "The quick brown fox jumps over the lazy dog", "hex"),
    "binary digest": () => crypto.sha512("x", "binary").byteLength === 64,
    "random bytes": () => crypto.randomBytes(16).byteLength === 16,
    "unknown algorithm named": () => {
      try {
        crypto.createHash("whirlpool");
      } catch (e) {
        return String(e).includes("whirlpool");
      }
      return false;
    },
  });
}
