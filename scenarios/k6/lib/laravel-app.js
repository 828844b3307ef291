// The Laravel app and its people, as the YAML scenarios' `behaviour` describes them, written for
// k6 scripts over k6/x/wagate. One VU of the `users` scenario is one account: it starts its
// session after a start delay, waits for the QR code in Laravel, takes a scan delay, pairs the
// phone, then lives (messages, churn) until its lifetime or the scenario ends. The app's status
// pollers are VUs of their own (a k6 VU runs one loop): the poller VU that began the scenario's
// k-th iteration polls the session of account k % users, after that account's start delay.
import wagate from "k6/x/wagate";
import { sleep } from "k6";
import exec from "k6/execution";

// startDelay is user n's deterministic start delay in seconds (pollers wait the same).
export function startDelay(n, maxSeconds) {
  return ((n * 7919) % 1000) / 1000 * maxSeconds;
}

export function sessionId(prefix, n) {
  return `${prefix}-${n}`;
}

function uniform(min, max) {
  return min + Math.random() * (max - min);
}

// thinkTime is a poller's wait after an answer (seconds): uniform within wagate.pollJitter of
// the interval each way, as the YAML users' pollers wait (a bunch of polls that formed once, in a
// GC pause or a moment without the CPU, spreads out instead of firing together round after round).
const jitterLow = 1 - wagate.pollJitter;
const jitterSpan = 2 * wagate.pollJitter;
function thinkTime(interval) {
  return interval * (jitterLow + jitterSpan * Math.random());
}

// exponential draws an exponential wait (seconds) for a rate per hour; 0 means never.
function exponential(perHour) {
  return perHour > 0 ? (-Math.log(1 - Math.random()) / perHour) * 3600 : Infinity;
}

// account is the account (0..users-1) this VU plays, set by its first iteration: the scenario's
// iteration number then (each VU of a per-vu-iterations or constant-vus scenario begins its first
// iteration at the scenario's start, so they number 0, 1, ...), kept for the VU's later iterations.
// exec.vu.idInTest is no account number when a test has several scenarios: VUs are numbered
// across all of them as they finish their init, so idInTest % users gave two of seed-batch-100.js's
// accounts the same session and none to another.
let account = -1;

export function accountOf(b) {
  if (account < 0) account = exec.scenario.iterationInTest % b.users;
  return account;
}

// pairingPage is the app's page while its user pairs: it polls the gateway's QR endpoint every
// qrPollInterval seconds (GET /sessions/{id}/qr) and, with pollsInline, the session's status every
// statusPollInterval (the first within one interval of the start), from the start until the
// device is connected, as the YAML users' app and pollers do; polls are made
// from waitShown's, sleep's and paired's waits. Without polls it only waits.
function pairingPage(id, b) {
  const now = Date.now();
  const timers = [];
  if (b.qrPollInterval) timers.push({ every: b.qrPollInterval * 1000, next: now + b.qrPollInterval * 1000, poll: wagate.pollQR });
  const status = b.pollsInline ? { every: b.statusPollInterval * 1000, next: now + Math.random() * b.statusPollInterval * 1000, poll: wagate.pollStatus } : null;
  if (status) timers.push(status);
  // pollDue polls what is due and returns when the next poll is due.
  const pollDue = () => {
    let soonest = Infinity;
    for (let i = 0; i < timers.length; i++) {
      const t = timers[i];
      if (Date.now() >= t.next) {
        try {
          t.poll(id);
        } catch (e) {
          // a failed poll is measured (http_req_failed); the page polls again next time
        }
        t.next = Date.now() + thinkTime(t.every);
      }
      soonest = Math.min(soonest, t.next);
    }
    return soonest;
  };
  return {
    // waitShown returns the code Laravel shows other than previous, waiting at most giveUp s.
    waitShown(giveUp, previous) {
      const end = Date.now() + giveUp * 1000;
      for (;;) {
        const next = pollDue();
        if (next >= end) return wagate.waitQR(id, Math.max(end - Date.now(), 1), previous);
        try {
          return wagate.waitQR(id, Math.max(next - Date.now(), 1), previous);
        } catch (e) {
          if (!String(e).includes("no QR code in Laravel")) throw e; // not waitQR's timeout
        }
      }
    },
    // sleep pauses s seconds, polling when due.
    sleep(s) {
      const end = Date.now() + s * 1000;
      for (;;) {
        const next = pollDue();
        const left = end - Date.now();
        if (left <= 0) return;
        sleep(Math.min(left, next - Date.now()) / 1000);
      }
    },
    // paired waits for the pairing wagate.startPair began (the phone scanned, its device
    // connecting) and returns it, polling when due.
    paired() {
      for (;;) {
        const next = pollDue();
        const p = wagate.waitPair(id, next === Infinity ? undefined : Math.max(next - Date.now(), 1));
        if (p !== null) return p;
      }
    },
    // statusDue is when the page's next status poll is due (ms since the epoch; Infinity without).
    statusDue() {
      return status ? status.next : Infinity;
    },
  };
}

// user plays one account for the whole iteration. b: {prefix, users, startDelayMax, scanDelay:
// [min,max], scanSuccess (default 1), sessionLifetime: [min,max] (seconds), logoutAtEnd,
// messagesPerMinute, incomingMessagesPerMinute, replies, dropsPerHour, replacedPerHour,
// remoteLogoutsPerHour, pollsInline, backgroundPolls, qrPollInterval}. While the user pairs (until
// the device is connected), the app's page polls the gateway's QR endpoint every qrPollInterval
// seconds (none when unset) and, with pollsInline, the status too (pairingPage). The session's
// customer writes incomingMessagesPerMinute (Poisson), each a reply to their previous message with
// probability replies, as the YAML users' customers do. With pollsInline the account's own VU polls
// its status every statusPollInterval, the first within one interval of the start, while the
// session pairs and lives (one poller per account, as the YAML users' pollers: 1), instead of
// poller VUs of their own. With backgroundPolls the app's pollers are k6/x/wagate's background
// pollers (startPolling) beside the VU, as the YAML users' poller goroutines beside their person:
// the status's from the start until the session ends (the first within one statusPollInterval),
// the QR code's every qrPollInterval until the device is paired; the VU only plays the person (the
// pairing, messages and churn). Either way the requests are the YAML users'.
export function user(b) {
  const n = accountOf(b);
  if (__ITER === 0) sleep(startDelay(n, b.startDelayMax));
  const id = __ITER === 0 ? sessionId(b.prefix, n) : `${sessionId(b.prefix, n)}-${__ITER}`;
  wagate.startSession(id);
  if (b.backgroundPolls) {
    // The app's pollers run beside the person, as the YAML users' poller goroutines: the status
    // from the start until the session ends, the QR code until the device is connected.
    wagate.startPolling(id, "status", `${b.statusPollInterval}s`);
    if (b.qrPollInterval) wagate.startPolling(id, "qr", `${b.qrPollInterval}s`);
    try {
      pairAndLive(id, { ...b, qrPollInterval: 0, pollsInline: false }, () => wagate.stopPolling(id, "qr"));
    } finally {
      wagate.stopPolling(id);
    }
    return;
  }
  pairAndLive(id, b, () => {});
}

// pairAndLive is the person's part of user: pair the phone with the code Laravel shows, then live
// until the session's end; paired is called once the phone's device is connected.
function pairAndLive(id, b, paired) {
  // The person scans the code Laravel shows scanDelay after it appears; a missed scan (one in
  // 1 - scanSuccess) waits for the next code, as the YAML users do.
  const giveUp = b.giveUpAfter || 90;
  const scanSuccess = b.scanSuccess === undefined ? 1 : b.scanSuccess;
  const page = pairingPage(id, b);
  let shown = page.waitShown(giveUp, "");
  page.sleep(uniform(b.scanDelay[0], b.scanDelay[1]));
  while (Math.random() >= scanSuccess) {
    shown = page.waitShown(giveUp, wagate.laravelQR(id) || shown);
    page.sleep(uniform(b.scanDelay[0], b.scanDelay[1]));
  }
  // The phone scans and its device connects while the page goes on polling (startPair returns at
  // once, page.paired polls between waitPair's waits), as the YAML users' pollers poll during
  // their pairing.
  wagate.startPair(id, `${giveUp}s`);
  page.paired();
  paired();
  // The status polls go on at the page's pace: the first is the one the page had due.
  live(id, b, b.pollsInline ? Math.max(page.statusDue() - Date.now(), 0) / 1000 : Infinity);
}

// live is the connected life of session id, from its pairing to its end (sessionLifetime, a
// replaced stream or a remote logout): messages, the customer's writes, drops and, with
// pollsInline, a status poll every statusPollInterval (jittered), the first firstPoll seconds
// from now. b is user's behaviour.
export function live(id, b, firstPoll) {
  // Each timer is a deadline in seconds on the loop's clock t (the time slept since the pairing);
  // a wake sleeps until the soonest one and handles those due. Most wakes are the status poll's
  // (every 2 s against a message a minute): the polls due before anything else are an inner loop
  // of their own (sleep, poll, next poll time), and only then does a wake look at other, the
  // soonest of the rest, recomputed when one of them moves. What a wake touches is what it
  // costs: after a sleep each value the VU reads is likely out of the CPU's caches (1000 VUs'
  // goja runtimes are ~100 MB), and in goja a computed number is a heap object of its own. The
  // countdown per timer this loop had (seven subtractions and a Math.min of seven on every wake)
  // made 9 more allocations per poll and ~20% more interpreter CPU (k6-cost -e POLLS=inline).
  // What a wake calls is read once, here: sleep (a property of the k6 module's object, as
  // esbuild turns the import into), Math.random (of the Math built-in) and wagate.pollStatus would
  // each be a property lookup on every wake, in maps out of the caches.
  const end = uniform(b.sessionLifetime[0], b.sessionLifetime[1]);
  const pause = sleep;
  const random = Math.random;
  const pollStatus = wagate.pollStatus;
  const pollLow = b.statusPollInterval * jitterLow;
  const pollSpan = b.statusPollInterval * jitterSpan;
  const incomingPerHour = (b.incomingMessagesPerMinute || 0) * 60;
  let msgAt = b.messagesPerMinute > 0 ? exponential(b.messagesPerMinute * 60) : Infinity;
  let inAt = exponential(incomingPerHour);
  let dropAt = exponential(b.dropsPerHour || 0);
  const replaceAt = exponential(b.replacedPerHour || 0);
  const remoteAt = exponential(b.remoteLogoutsPerHour || 0);
  let pollAt = b.pollsInline ? firstPoll : Infinity;
  let other = Math.min(end, msgAt, inAt, dropAt, replaceAt, remoteAt);
  let t = 0;
  let sent = 0;
  let written = 0;
  let lastIn = "";
  for (;;) {
    while (pollAt < other) {
      pause(pollAt - t);
      t = pollAt;
      pollStatus(id);
      pollAt = t + pollLow + pollSpan * random();
    }
    if (other === Infinity) return;
    pause(other - t);
    t = other;
    if (t >= end) {
      if (Math.random() < b.logoutAtEnd) wagate.logout(id);
      return;
    }
    if (t >= pollAt) {
      // a poll due with something else
      pollStatus(id);
      pollAt = t + pollLow + pollSpan * random();
    }
    if (t >= msgAt) {
      sent++;
      wagate.send(id, `message ${sent} from ${id}`);
      msgAt = t + exponential(b.messagesPerMinute * 60);
    }
    if (t >= inAt) {
      written++;
      const quote = lastIn !== "" && Math.random() < (b.replies || 0) ? lastIn : "";
      try {
        lastIn = wagate.receive(id, `customer message ${written} to ${id}`, quote).id;
      } catch (e) {
        // fakewa refused it (counted as message_write_failures); the customer writes again later.
      }
      inAt = t + exponential(incomingPerHour);
    }
    if (t >= dropAt) {
      wagate.drop(id);
      dropAt = t + exponential(b.dropsPerHour);
    }
    if (t >= replaceAt) {
      wagate.replace(id);
      return; // the session was taken over
    }
    if (t >= remoteAt) {
      wagate.phoneLogout(id);
      return;
    }
    other = Math.min(end, msgAt, inAt, dropAt, replaceAt, remoteAt);
  }
}

// poller is one of the app's status pollers: a closed loop of GET /sessions/{id} and a think time.
export function poller(b) {
  const n = accountOf(b);
  if (__ITER === 0) sleep(startDelay(n, b.startDelayMax) + 1);
  wagate.pollStatus(sessionId(b.prefix, n));
  sleep(thinkTime(b.statusPollInterval));
}
