// Package truth owns the ground truth of a simulation run: what every virtual user and every
// injected fault caused, what Laravel showed and with which versions, and the verdict at the end
// (lost updates, stale overwrites, gateway state mismatches, QR codes that expired unseen). It
// speaks the gateway's vocabulary (gateway/laravel's estado_qr values, gateway/event's priorities)
// and copies none of its rules.
//
// The gateway numbers every event of a session (QR codes and statuses) in one increasing sequence,
// epoch*1e6+counter, and Laravel applies a status only when its version is newer than the one it
// holds. Versions, not states, therefore decide the verdict:
//
//   - A transient state is one the gateway emitted and then superseded with a newer version before
//     the end (the disconnected between a drop and whatsmeow's reconnect). Laravel may never show
//     it (coalesced, or between two polls) or show it for a while: both are fine.
//   - A lost update is a session whose gateway's final event (its final version) Laravel does not
//     hold once the run has drained and converged: a transient state at the end, an older version
//     of the right state, or a final state Laravel refused because the gateway's versions went
//     back. Without the gateway's view, a Laravel state other than what the simulation caused.
//   - A stale overwrite is Laravel applying a status version not newer than one it had already
//     applied (seen by polling Laravel), whatever the states: a late event applied.
//   - A duplicate delivery (the same event id twice) and a late event Laravel ignored change
//     nothing Laravel shows: neither lost nor stale.
//   - A gateway mismatch is a session whose final state Laravel shows faithfully but which is not
//     what the simulation caused (a drop never reconnected, a replaced stream taken back).
//
// Converge makes the comparison fair (gateway read first, then Laravel polled until it caught up,
// bounded); Judge is the verdict on one session, a pure function; Ledger records a run and
// Finish applies Judge to every session.
package truth
