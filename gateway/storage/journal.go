package storage

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"wagate/gateway/event"
)

// The message journal: customers' messages and receipts kept in the SQL store, outside Redis,
// from the moment the gateway takes them until Laravel settled them (applied, or dead-lettered).
// The gateway acknowledges a message to WhatsApp once it is in the Redis outbox, so WhatsApp never
// delivers it again; a Redis that loses its data (killed without persistence, an evicting policy,
// a failover to an empty replica) would lose it for good. With the journal, the gateway appends
// every journalled item again when it notices the loss (see gateway/app).
//
// A row Laravel applied is not deleted at once: it is marked settled (Settle: settled_at) and
// kept for the settled retention (PruneSettled). A Redis restarted from an AOF that misses its
// last second brings back the outbox entries of items settled in that second, without their
// acknowledgement or their batch record; the delivery asks the journal (States) about every
// message and receipt it takes in and acknowledges away those it finds applied, where it would
// otherwise send them again in a new batch under a new key, which Laravel applies a second time
// (chaos fault kind redis-restart-while-gateway-down). A dead-lettered item's row is deleted
// (Forget): Laravel refused it, and an entry of it Redis brings back is sent and refused again.

// DefaultJournalRetention is how long a journal row is kept when nothing settles it (Laravel never
// took the item, or the gateway missed the settlement): a week.
const DefaultJournalRetention = 7 * 24 * time.Hour

// DefaultJournalSettledRetention is how long the row of an item Laravel applied is kept after its
// settlement (PruneSettled): far past the second of writes a Redis on AOF everysec loses (up to
// ~2 s when its fsync is slow), and past the few minutes a replica promoted by a failover may lag.
const DefaultJournalSettledRetention = 15 * time.Minute

// MinJournalSettledRetention is the shortest settled retention a start accepts: ten times the
// span a Redis on AOF everysec may lose.
const MinJournalSettledRetention = 10 * time.Second

// journalSchema is the journal's table. item_key is the item's identity (JournalKey), so
// WhatsApp's redelivery of an item the journal holds adds no second row; the (session_id, seq)
// index serves the replay, which reads each session's items in sequence order. batch_key,
// batch_pos and batch_len are the batch the item was last about to be sent in (NoteBatches: its
// Idempotency-Key, the item's position in it and how many items it has; empty when none).
// settled_at is when Laravel applied the item (Unix ms; 0 while it is not settled).
const journalSchema = `
CREATE TABLE IF NOT EXISTS wagate_journal (
	item_key    TEXT PRIMARY KEY,
	session_id  TEXT NOT NULL,
	seq         BIGINT NOT NULL,
	recorded_at BIGINT NOT NULL,
	event       TEXT NOT NULL,
	batch_key   TEXT NOT NULL DEFAULT '',
	batch_pos   BIGINT NOT NULL DEFAULT 0,
	batch_len   BIGINT NOT NULL DEFAULT 0,
	settled_at  BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS wagate_journal_session_seq ON wagate_journal (session_id, seq);
`

// journalAddedColumns are the columns stores created by earlier versions gain (migrate): the
// batch an item was sent in (NoteBatches), then its settlement (Settle).
var journalAddedColumns = []string{
	`batch_key TEXT NOT NULL DEFAULT ''`,
	`batch_pos BIGINT NOT NULL DEFAULT 0`,
	`batch_len BIGINT NOT NULL DEFAULT 0`,
	`settled_at BIGINT NOT NULL DEFAULT 0`,
}

// Journal is the message journal on a DB. It is safe for concurrent use.
type Journal struct {
	db  *DB
	now func() time.Time

	// What this Journal did since it was made (Counts).
	recorded, settled, pruned, settledPruned atomic.Int64
}

// JournalCounts are the rows one Journal added (Record of an item it did not hold), settled
// (Settle marked applied, Forget deleted as dead-lettered), pruned unsettled (Prune) and pruned
// settled (PruneSettled) since it was made.
type JournalCounts struct {
	Recorded, Settled, Pruned, SettledPruned int64
}

// Counts returns what j did since it was made; it reads no database.
func (j *Journal) Counts() JournalCounts {
	return JournalCounts{Recorded: j.recorded.Load(), Settled: j.settled.Load(), Pruned: j.pruned.Load(),
		SettledPruned: j.settledPruned.Load()}
}

// NewJournal returns the journal of db (its table is created by Open).
func NewJournal(db *DB) *Journal { return &Journal{db: db, now: time.Now} }

// JournalKey is the identity of a message or receipt event: its session and message id and, for a
// receipt, the receipt's sender and status; "" for other kinds. It is the identity the outbox
// appends once by (outbox.OnceWindow): two events of one key are the same item to Laravel.
func JournalKey(ev event.Event) string {
	const sep = "\x1f" // the unit separator: in no session id, message id or JID
	switch {
	case ev.Kind == event.KindMessage:
		return ev.SessionID + sep + "m" + sep + ev.Payload
	case ev.Kind == event.KindReceipt && ev.Receipt != nil:
		return ev.SessionID + sep + "r" + sep + ev.Payload + sep + ev.Receipt.Sender + sep + string(ev.Receipt.Status)
	}
	return ""
}

// Record stores ev, a message or receipt event, as it is appended to the outbox (its event id,
// sequence and item), before it is appended. An item the journal already holds (WhatsApp
// delivering it again) keeps its first row, settled or not (an entry of an item Laravel applied
// is acknowledged away by the delivery: States). One INSERT.
func (j *Journal) Record(ctx context.Context, ev event.Event) error {
	key := JournalKey(ev)
	if key == "" {
		return fmt.Errorf("storage: journal: event %s is a %s, not a message or receipt", ev.ID, ev.Kind)
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("storage: journal: encode event %s: %w", ev.ID, err)
	}
	res, err := j.db.SQL.ExecContext(ctx, `INSERT INTO wagate_journal (item_key, session_id, seq, recorded_at, event)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (item_key) DO NOTHING`,
		key, ev.SessionID, ev.Version, j.now().UnixMilli(), string(data))
	if err != nil {
		return fmt.Errorf("storage: journal: record event %s: %w", ev.ID, err)
	}
	if n, err := res.RowsAffected(); err == nil {
		j.recorded.Add(n)
	}
	return nil
}

// journalDeleteChunk bounds the keys of one DELETE (SQLite allows 32766 parameters by default).
const journalDeleteChunk = 500

// Settle marks the rows of the events Laravel applied settled (by item identity: any event of
// the item settles it), keeping them until PruneSettled; events of other kinds and rows settled
// already are left alone. One UPDATE per batch of up to 500 items. It returns how many rows it
// marked.
func (j *Journal) Settle(ctx context.Context, evs []event.Event) (int64, error) {
	at := j.now().UnixMilli()
	return eachKeyChunk(evs, func(chunk []any) (int64, error) {
		args := append([]any{at}, chunk...)
		res, err := j.db.SQL.ExecContext(ctx, `UPDATE wagate_journal SET settled_at = $1 WHERE settled_at = 0 AND item_key IN (`+placeholdersFrom(2, len(chunk))+`)`, args...)
		if err != nil {
			return 0, fmt.Errorf("storage: journal: mark %d items settled: %w", len(chunk), err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return 0, nil //nolint:nilerr // marked; only the count is unknown
		}
		j.settled.Add(n)
		return n, nil
	})
}

// Forget deletes the rows of the events' items (Laravel refused them: dead-lettered), settled or
// not; events of other kinds are ignored. One DELETE per batch of up to 500 items. It returns how
// many rows it deleted.
func (j *Journal) Forget(ctx context.Context, evs []event.Event) (int64, error) {
	return eachKeyChunk(evs, func(chunk []any) (int64, error) {
		res, err := j.db.SQL.ExecContext(ctx, `DELETE FROM wagate_journal WHERE item_key IN (`+placeholders(len(chunk))+`)`, chunk...)
		if err != nil {
			return 0, fmt.Errorf("storage: journal: delete %d dead-lettered items: %w", len(chunk), err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return 0, nil //nolint:nilerr // deleted; only the count is unknown
		}
		j.settled.Add(n)
		return n, nil
	})
}

// ItemState is what the journal knows of one item: whether it holds a row of it, whether Laravel
// applied it (the row is settled), and the batch it was last noted in (NoteBatches): its key and
// the id of the event it was sent as ("" when none).
type ItemState struct {
	Known   bool
	Applied bool
	Batch   string
	SentAs  string
}

// States returns, for each of evs in order, what the journal knows of its item (the zero
// ItemState for events of other kinds and items it holds no row of). One SELECT per 500 items.
func (j *Journal) States(ctx context.Context, evs []event.Event) ([]ItemState, error) {
	byKey := make(map[string]ItemState, len(evs))
	if _, err := eachKeyChunk(evs, func(chunk []any) (int64, error) {
		rows, err := j.db.SQL.QueryContext(ctx, `SELECT item_key, settled_at, batch_key, CASE WHEN batch_key <> '' AND settled_at = 0 THEN event ELSE '' END
			FROM wagate_journal WHERE item_key IN (`+placeholders(len(chunk))+`)`, chunk...)
		if err != nil {
			return 0, fmt.Errorf("storage: journal: read the state of %d items: %w", len(chunk), err)
		}
		defer rows.Close()
		for rows.Next() {
			var key, batch, data string
			var settledAt int64
			if err := rows.Scan(&key, &settledAt, &batch, &data); err != nil {
				return 0, fmt.Errorf("storage: journal: scan the state of an item: %w", err)
			}
			st := ItemState{Known: true, Applied: settledAt != 0, Batch: batch}
			if data != "" {
				var sent struct {
					ID string `json:"id"`
				}
				if err := json.Unmarshal([]byte(data), &sent); err != nil {
					return 0, fmt.Errorf("storage: journal: decode the event noted for batch %s: %w", batch, err)
				}
				st.SentAs = sent.ID
			}
			byKey[key] = st
		}
		if err := rows.Err(); err != nil {
			return 0, fmt.Errorf("storage: journal: read the state of %d items: %w", len(chunk), err)
		}
		return 0, nil
	}); err != nil {
		return nil, err
	}
	out := make([]ItemState, len(evs))
	for i, ev := range evs {
		if k := JournalKey(ev); k != "" {
			out[i] = byKey[k]
		}
	}
	return out, nil
}

// Holding returns how many of the items of evs the journal still holds unsettled.
func (j *Journal) Holding(ctx context.Context, evs []event.Event) (int64, error) {
	return eachKeyChunk(evs, func(chunk []any) (int64, error) {
		var n int64
		if err := j.db.SQL.QueryRowContext(ctx, `SELECT COUNT(*) FROM wagate_journal WHERE settled_at = 0 AND item_key IN (`+placeholders(len(chunk))+`)`,
			chunk...).Scan(&n); err != nil {
			return 0, fmt.Errorf("storage: journal: count %d items: %w", len(chunk), err)
		}
		return n, nil
	})
}

// eachKeyChunk runs fn on the journal keys of evs (events of other kinds have none), up to
// journalDeleteChunk at a time, and sums what it returns; it stops at the first error, returning
// the sum so far.
func eachKeyChunk(evs []event.Event, fn func(chunk []any) (int64, error)) (int64, error) {
	keys := make([]any, 0, len(evs))
	for _, ev := range evs {
		if k := JournalKey(ev); k != "" {
			keys = append(keys, k)
		}
	}
	var sum int64
	for len(keys) > 0 {
		chunk := keys[:min(len(keys), journalDeleteChunk)]
		keys = keys[len(chunk):]
		n, err := fn(chunk)
		if err != nil {
			return sum, err
		}
		sum += n
	}
	return sum, nil
}

// placeholders returns "$1,$2,...,$n".
func placeholders(n int) string { return placeholdersFrom(1, n) }

// placeholdersFrom returns n placeholders numbered from first: "$first,...,$(first+n-1)".
func placeholdersFrom(first, n int) string {
	var q strings.Builder
	for i := range n {
		if i > 0 {
			q.WriteByte(',')
		}
		fmt.Fprintf(&q, "$%d", first+i)
	}
	return q.String()
}

// JournalBatch is a batch of messages or receipts as the delivery sends it to Laravel: its
// Idempotency-Key and its items' events, in the order sent (the request's body is built from
// them, in that order).
type JournalBatch struct {
	Key    string
	Events []event.Event
}

// journalNoteChunk bounds the items of one NoteBatches statement (three parameters each).
const journalNoteChunk = 500

// NoteBatches notes on the journal rows of the batches' items the batch each is about to be sent
// in: its key, the item's position and the batch's length, and the item's event as sent (WhatsApp's
// redelivery of a refused item is sent with the redelivery's event while its row kept the first:
// the row must rebuild the body exactly, since Laravel refuses a key with another body). A later
// batch of an item (a split, a re-send under a new key) replaces what an earlier one noted. Items
// the journal does not hold are left out (a row is never created here). One UPDATE for up to 500
// items, whatever the number of batches.
func (j *Journal) NoteBatches(ctx context.Context, batches ...JournalBatch) error {
	type noted struct {
		key, event, batch string
		pos, n            int
	}
	var items []noted
	for _, b := range batches {
		for i, ev := range b.Events {
			key := JournalKey(ev)
			if key == "" {
				return fmt.Errorf("storage: journal: batch %s: event %s is a %s, not a message or receipt", b.Key, ev.ID, ev.Kind)
			}
			data, err := json.Marshal(ev)
			if err != nil {
				return fmt.Errorf("storage: journal: encode event %s: %w", ev.ID, err)
			}
			items = append(items, noted{key: key, event: string(data), batch: b.Key, pos: i, n: len(b.Events)})
		}
	}
	for len(items) > 0 {
		chunk := items[:min(len(items), journalNoteChunk)]
		items = items[len(chunk):]
		// The rows' new values joined by item key (UPDATE ... FROM, in both dialects); positions
		// and lengths are integers this code formats, keys and events are parameters.
		var values strings.Builder
		args := make([]any, 0, 3*len(chunk))
		for i, it := range chunk {
			if i > 0 {
				values.WriteString(" UNION ALL ")
			}
			fmt.Fprintf(&values, "SELECT $%d AS item_key, $%d AS batch_key, %d AS batch_pos, %d AS batch_len, $%d AS event", 3*i+1, 3*i+2, it.pos, it.n, 3*i+3)
			args = append(args, it.key, it.batch, it.event)
		}
		q := `UPDATE wagate_journal SET batch_key = v.batch_key, batch_pos = v.batch_pos, batch_len = v.batch_len, event = v.event
			FROM (` + values.String() + `) AS v WHERE wagate_journal.item_key = v.item_key`
		if _, err := j.db.SQL.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("storage: journal: note the batches of %d items: %w", len(chunk), err)
		}
	}
	return nil
}

// Batches returns the batches noted on the journal's rows (NoteBatches) whose every item the
// journal still holds unsettled, among the rows Replay of keep and before would give: each with its key and
// its items' events in the order they were sent, ordered by their first item's session and
// sequence. A batch some of whose rows are gone (settled by another event of the item, pruned),
// left out by keep or recorded after before is not among them: its other rows are replayed one by
// one (Replay gives every row, noted or not).
func (j *Journal) Batches(ctx context.Context, before time.Time, keep func(sessionID string) bool) ([]JournalBatch, error) {
	beforeMs := int64(1<<63 - 1)
	if !before.IsZero() {
		beforeMs = before.UnixMilli()
	}
	rows, err := j.db.SQL.QueryContext(ctx, `SELECT batch_key, batch_pos, batch_len, session_id, recorded_at, event FROM wagate_journal
		WHERE batch_key <> '' AND settled_at = 0 ORDER BY batch_key, batch_pos`)
	if err != nil {
		return nil, fmt.Errorf("storage: journal: read the noted batches: %w", err)
	}
	defer rows.Close()
	type group struct {
		b      JournalBatch
		n      int64
		broken bool
	}
	var groups []*group
	for rows.Next() {
		var key, session, data string
		var pos, n, recordedAt int64
		if err := rows.Scan(&key, &pos, &n, &session, &recordedAt, &data); err != nil {
			return nil, fmt.Errorf("storage: journal: scan a noted batch: %w", err)
		}
		if len(groups) == 0 || groups[len(groups)-1].b.Key != key {
			groups = append(groups, &group{b: JournalBatch{Key: key}, n: n})
		}
		g := groups[len(groups)-1]
		if g.broken {
			continue
		}
		if pos != int64(len(g.b.Events)) || n != g.n || recordedAt >= beforeMs || (keep != nil && !keep(session)) {
			g.broken = true
			continue
		}
		var ev event.Event
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			return nil, fmt.Errorf("storage: journal: decode an item of batch %s: %w", key, err)
		}
		g.b.Events = append(g.b.Events, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: journal: read the noted batches: %w", err)
	}
	var out []JournalBatch
	for _, g := range groups {
		if !g.broken && int64(len(g.b.Events)) == g.n {
			out = append(out, g.b)
		}
	}
	slices.SortStableFunc(out, func(a, b JournalBatch) int {
		x, y := a.Events[0], b.Events[0]
		if c := strings.Compare(x.SessionID, y.SessionID); c != 0 {
			return c
		}
		return cmp.Compare(x.Version, y.Version)
	})
	return out, nil
}

// journalPage is how many rows Replay reads at a time.
const journalPage = 500

// Replay calls fn with every unsettled journalled event of the sessions keep accepts (nil: every session),
// session by session, each session's in sequence order, reading the rows a page at a time. It
// stops at fn's first error and returns it.
func (j *Journal) Replay(ctx context.Context, keep func(sessionID string) bool, fn func(context.Context, event.Event) error) error {
	return j.ReplayRecordedBefore(ctx, time.Time{}, keep, fn)
}

// ReplayRecordedBefore is Replay of the rows recorded before before (zero: every row).
func (j *Journal) ReplayRecordedBefore(ctx context.Context, before time.Time, keep func(sessionID string) bool, fn func(context.Context, event.Event) error) error {
	beforeMs := int64(1<<63 - 1)
	if !before.IsZero() {
		beforeMs = before.UnixMilli()
	}
	afterSession, afterSeq := "", int64(-1<<63)
	for {
		rows, err := j.db.SQL.QueryContext(ctx, `SELECT session_id, seq, event, recorded_at, settled_at FROM wagate_journal
			WHERE session_id > $1 OR (session_id = $1 AND seq > $2) ORDER BY session_id, seq LIMIT $3`,
			afterSession, afterSeq, journalPage)
		if err != nil {
			return fmt.Errorf("storage: journal: read: %w", err)
		}
		var page []event.Event
		read := 0
		for rows.Next() {
			read++
			var data string
			var recordedAt, settledAt int64
			if err := rows.Scan(&afterSession, &afterSeq, &data, &recordedAt, &settledAt); err != nil {
				rows.Close()
				return fmt.Errorf("storage: journal: scan: %w", err)
			}
			if settledAt != 0 || recordedAt >= beforeMs || (keep != nil && !keep(afterSession)) {
				continue
			}
			var ev event.Event
			if err := json.Unmarshal([]byte(data), &ev); err != nil {
				rows.Close()
				return fmt.Errorf("storage: journal: decode the row of session %s sequence %d: %w", afterSession, afterSeq, err)
			}
			page = append(page, ev)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("storage: journal: read: %w", err)
		}
		for _, ev := range page {
			if err := fn(ctx, ev); err != nil {
				return err
			}
		}
		if read < journalPage {
			return nil
		}
	}
}

// Len returns how many items the journal holds unsettled.
func (j *Journal) Len(ctx context.Context) (int64, error) {
	var n int64
	if err := j.db.SQL.QueryRowContext(ctx, `SELECT COUNT(*) FROM wagate_journal WHERE settled_at = 0`).Scan(&n); err != nil {
		return 0, fmt.Errorf("storage: journal: count: %w", err)
	}
	return n, nil
}

// JournalHeld is what the journal holds at one moment: how many unsettled rows, when the oldest
// of them was recorded (zero when it holds none), and how many settled rows it keeps.
type JournalHeld struct {
	Rows    int64
	Oldest  time.Time
	Settled int64
}

// Held counts the journal's unsettled rows, finds the oldest one's recording time and counts the
// settled rows kept: one query (a scan of the rows: the items not yet settled and those settled
// within the settled retention).
func (j *Journal) Held(ctx context.Context) (JournalHeld, error) {
	var h JournalHeld
	var oldest sql.NullInt64
	if err := j.db.SQL.QueryRowContext(ctx, `SELECT COALESCE(SUM(CASE WHEN settled_at = 0 THEN 1 ELSE 0 END), 0),
		MIN(CASE WHEN settled_at = 0 THEN recorded_at END), COALESCE(SUM(CASE WHEN settled_at = 0 THEN 0 ELSE 1 END), 0) FROM wagate_journal`).
		Scan(&h.Rows, &oldest, &h.Settled); err != nil {
		return JournalHeld{}, fmt.Errorf("storage: journal: count: %w", err)
	}
	if oldest.Valid {
		h.Oldest = time.UnixMilli(oldest.Int64)
	}
	return h, nil
}

// Prune deletes the unsettled rows recorded before before (items nothing settled within the
// retention) and returns how many it deleted.
func (j *Journal) Prune(ctx context.Context, before time.Time) (int64, error) {
	res, err := j.db.SQL.ExecContext(ctx, `DELETE FROM wagate_journal WHERE settled_at = 0 AND recorded_at < $1`, before.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("storage: journal: prune: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("storage: journal: prune: %w", err)
	}
	j.pruned.Add(n)
	return n, nil
}

// PruneSettled deletes the rows settled before before (their settlement is durable in Redis by
// then: see DefaultJournalSettledRetention) and returns how many it deleted.
func (j *Journal) PruneSettled(ctx context.Context, before time.Time) (int64, error) {
	res, err := j.db.SQL.ExecContext(ctx, `DELETE FROM wagate_journal WHERE settled_at <> 0 AND settled_at < $1`, before.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("storage: journal: prune settled rows: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("storage: journal: prune settled rows: %w", err)
	}
	j.settledPruned.Add(n)
	return n, nil
}

// The last Redis data loss a running gateway noticed, kept in the store (wagate_meta
// 'redis_loss_at', Unix ms) so that every replica of a cluster, also one started after the loss,
// appends again the rows recorded before it of each shard it claims (a shard held by nobody at
// the loss was replayed by no replica). Forgotten once no row older than it is left.

// NoteLoss records that Redis lost its data at at (a later loss replaces an earlier one).
func (j *Journal) NoteLoss(ctx context.Context, at time.Time) error {
	_, err := j.db.SQL.ExecContext(ctx, `INSERT INTO wagate_meta (name, value) VALUES ('redis_loss_at', $1)
		ON CONFLICT (name) DO UPDATE SET value = CASE WHEN excluded.value > wagate_meta.value THEN excluded.value ELSE wagate_meta.value END`, at.UnixMilli())
	if err != nil {
		return fmt.Errorf("storage: journal: record a redis data loss: %w", err)
	}
	return nil
}

// LastLoss returns the loss NoteLoss recorded last and nothing forgot since (zero: none).
func (j *Journal) LastLoss(ctx context.Context) (time.Time, error) {
	var ms int64
	err := j.db.SQL.QueryRowContext(ctx, `SELECT value FROM wagate_meta WHERE name = 'redis_loss_at'`).Scan(&ms)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("storage: journal: read the last redis data loss: %w", err)
	}
	return time.UnixMilli(ms), nil
}

// ForgetLoss forgets the recorded loss if it is the one at at or an earlier one (a later loss
// recorded meanwhile stays).
func (j *Journal) ForgetLoss(ctx context.Context, at time.Time) error {
	if _, err := j.db.SQL.ExecContext(ctx, `DELETE FROM wagate_meta WHERE name = 'redis_loss_at' AND value <= $1`, at.UnixMilli()); err != nil {
		return fmt.Errorf("storage: journal: forget a redis data loss: %w", err)
	}
	return nil
}
