// Remote imports other than the built-in jslib equivalents fail, naming the URL.
import { something } from "https://example.com/lib.js";
export default function () {
  something();
}
