// CommonJS scripts: require() of k6 modules and of relative files, module.exports for options and
// the default function.
const { check } = require("k6");
const { triple } = require("./lib/cjs-helper.js");

module.exports.options = { iterations: 1, thresholds: { checks: ["rate==1"] } };

module.exports.default = function () {
  check(triple(3), { "required helper": (v) => v === 9 });
};
