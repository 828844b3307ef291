// smoke (k6 script): the YAML smoke's world driven from JavaScript. Five VUs each start a
// session as the Laravel app does, pair the fake phone with the QR code Laravel received, send a
// few messages, receive two from their customer (the second a reply), suffer a network drop, and a
// share of them log out at the end; the ground truth (lost updates, stale overwrites, the
// customers' messages lost, duplicated or out of order) is checked by thresholds after teardown.
//
//   bin/simulator run scenarios/k6/smoke.js
//
// The world (gateway in batch mode, fakelaravel, fakewa, Redis) comes from ../smoke.yaml; its
// users and thresholds there are not used: this script is the workload.
import wagate from "k6/x/wagate";
import { check, group, sleep } from "k6";
import exec from "k6/execution";

export const options = {
  ext: { wagate: { world: "../smoke.yaml" } },
  scenarios: {
    sessions: { executor: "per-vu-iterations", vus: 5, iterations: 1, maxDuration: "90s", gracefulStop: "10s" },
  },
  thresholds: {
    lost_updates: ["count==0"],
    stale_overwrites: ["count==0"],
    wagate_pairings: ["count>=5"],
    wagate_messages_written: ["count==10"],
    messages_lost: ["count==0"],
    messages_duplicated: ["count==0"],
    messages_out_of_order: ["count==0"],
    checks: ["rate>0.95"],
    "http_req_duration{endpoint:status}": ["p(95)<500"],
    http_req_failed: ["rate<0.05"],
  },
};

export default function () {
  const s = group("start", () => wagate.startSession(`k6-smoke-${exec.vu.idInTest}`));
  check(s, { "session started": (x) => x.httpStatus < 300 });

  const p = group("pair", () => wagate.pair(s.id, "60s"));
  check(p, { "paired and connected": (x) => x.jid !== "" });

  group("live", () => {
    // As the Laravel app does: wait for the gateway to report the session connected before
    // sending. A freshly paired device logs in again after WhatsApp's 515 restart; on a starved
    // machine that login can be late, and the gateway's own watch reconnects a device that has not
    // logged in after its pair-login timeout (20 s), so the app waits longer than that.
    let st = wagate.status(s.id);
    for (let i = 0; i < 120 && st !== "connected"; i++) {
      sleep(0.25);
      st = wagate.status(s.id);
    }
    if (!check(st, { "connected after pairing": (x) => x === "connected" })) {
      console.warn(`${s.id} not connected 30 s after pairing: ${st}`);
    }
    for (let i = 0; i < 3; i++) {
      // 409 is the gateway's answer while a session (re)connects, or while Laravel has not yet
      // received its `connected` (isSessionActive reads Laravel's view, which a batch reaches within
      // the priority interval, later on a loaded machine): the app retries shortly, for up to 5 s.
      let sent = wagate.send(s.id, `message ${i} from ${s.id}`);
      for (let retry = 0; retry < 10 && sent.httpStatus === 409; retry++) {
        sleep(0.5);
        sent = wagate.send(s.id, `message ${i} from ${s.id}`);
      }
      if (!check(sent, { "message accepted": (x) => x.httpStatus < 300 })) {
        console.warn(`send ${i} from ${s.id}: ${sent.httpStatus} ${JSON.stringify(sent.body)}`);
      }
      sleep(0.5);
    }
    // The session's customer writes, then replies to their own message.
    const m = wagate.receive(s.id, `customer message 1 to ${s.id}`);
    wagate.receive(s.id, `customer message 2 to ${s.id}`, m.id);
    wagate.drop(s.id);
    sleep(3);
    check(wagate.status(s.id), { "reconnected after a drop": (st) => st === "connected" });
  });

  if (exec.vu.idInTest % 2 === 0) {
    group("logout", () => {
      check(wagate.logout(s.id), { "logout accepted": (code) => code < 300 });
    });
  }
}
