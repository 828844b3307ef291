// Package session owns the gateway's WhatsApp sessions: starting, stopping and logging out a
// session by its session_id, the status state machine (pending, connected, disconnected,
// logged_out, expired), QR code rotation, and turning every QR code and status change into an
// event.Event with a per-session version that stays monotonic across restarts. It talks to
// WhatsApp through the small Driver interface (gateway/whatsapp wraps whatsmeow) and hands events
// to a delivery.Delivery, in order per session, without ever blocking the WhatsApp client.
//
// A session whose event the delivery refused (batch: the outbox stayed full, or Redis did not
// answer, past the append deadline) is dirty: Laravel may lack its latest state. When the delivery
// accepts an event again (or ResyncRetry later), the manager sends the dirty session's current
// status (and current QR code) again with new versions, never the stale refused event. Dirty
// reports them; a stop with dirty sessions is not a clean stop, so the next start resends every
// status. ResyncAll marks every session dirty (batch: Redis lost its data and the outbox with it).
//
// Cost model: nothing runs per idle session. A QR code in display holds one time.AfterFunc timer;
// a session with events to deliver holds one goroutine until its queue is empty.
//
// Where things live: manager.go holds the Manager, its API (Start, Stop, Logout, Get, List,
// SendText, Close) and the driver's events (onEvent); restore.go restoring sessions after a start;
// qr.go QR rotation and the login watch after a scan; versions.go versions and epochs; queue.go
// the per-session event queue and its drainer; resync.go dirty sessions sent again; owner.go
// cluster mode's ownership and fencing; messages.go and media.go messages and media.
package session
