// Counter, Gauge, Rate and Trend with tags; thresholds on their sub-metrics.
import { Counter, Gauge, Rate, Trend } from "k6/metrics";

const sent = new Counter("msgs_sent");
const depth = new Gauge("queue_depth");
const ok = new Rate("msg_ok");
const lag = new Trend("msg_lag", true);

export const options = {
  vus: 1,
  iterations: 4,
  thresholds: {
    msgs_sent: ["count==8"],
    "msgs_sent{kind:text}": ["count==4"],
    queue_depth: ["value==3"],
    msg_ok: ["rate==0.75"],
    // Trends are HDR histograms (3 significant digits), not exact sample lists.
    "msg_lag{kind:text}": ["max>29.9", "max<30.1", "min<0.01"],
  },
};

export default function () {
  sent.add(1, { kind: "text" });
  sent.add(1, { kind: "image" });
  depth.add(__ITER);
  ok.add(__ITER !== 0);
  lag.add(__ITER * 10, { kind: "text" });
}
