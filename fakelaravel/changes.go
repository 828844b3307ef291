package fakelaravel

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
)

// The change feed of whatsapp_sessions: every write of a row (insert, upsert, update, the enabled
// flag) gives it the next change number, so GET /_fake/state?since=N answers only the rows whose
// last change is after N, with the cursor to ask from next time. The numbers are taken by
// triggers inside the writing transaction from a one-row counter table: fakelaravel has one
// writer connection, so transactions commit in the order they take numbers, and a read that sees
// number N sees every change up to N (WAL snapshots). A row changed twice carries only its last
// number; a stale item (a version not newer) changes nothing and takes none.
//
// Deletions are not in the feed: Reset moves the counter past reset_seq, and a cursor older than
// reset_seq (or newer than the counter: another database) is answered with a full snapshot. The
// counter starts at 1, so a cursor is never 0 (0 asks for a full snapshot).
const changesSchema = `
CREATE TABLE IF NOT EXISTS wagate_state_cursor (
	id        INTEGER PRIMARY KEY CHECK (id = 1),
	seq       INTEGER NOT NULL,
	reset_seq INTEGER NOT NULL
);
INSERT OR IGNORE INTO wagate_state_cursor (id, seq, reset_seq) VALUES (1, 1, 0);
CREATE INDEX IF NOT EXISTS whatsapp_sessions_change_seq ON whatsapp_sessions (change_seq);
CREATE TRIGGER IF NOT EXISTS whatsapp_sessions_inserted AFTER INSERT ON whatsapp_sessions BEGIN
	UPDATE wagate_state_cursor SET seq = seq + 1 WHERE id = 1;
	UPDATE whatsapp_sessions SET change_seq = (SELECT seq FROM wagate_state_cursor WHERE id = 1) WHERE id = NEW.id;
END;
CREATE TRIGGER IF NOT EXISTS whatsapp_sessions_updated
AFTER UPDATE OF session_id, estado_qr, status_version, status_changed_at, qr, qr_version, qr_generated_at, enabled, created_at, updated_at
ON whatsapp_sessions BEGIN
	UPDATE wagate_state_cursor SET seq = seq + 1 WHERE id = 1;
	UPDATE whatsapp_sessions SET change_seq = (SELECT seq FROM wagate_state_cursor WHERE id = 1) WHERE id = NEW.id;
END;`

// migrateChanges adds the change_seq column to a database created before the change feed, then
// creates the feed's counter, index and triggers.
func migrateChanges(ctx context.Context, db *sql.DB) error {
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM pragma_table_info('whatsapp_sessions') WHERE name = 'change_seq'`).Scan(&n); err != nil {
		return fmt.Errorf("store: change feed: %w", err)
	}
	if n == 0 {
		if _, err := db.ExecContext(ctx, `ALTER TABLE whatsapp_sessions ADD COLUMN change_seq INTEGER NOT NULL DEFAULT 0`); err != nil {
			return fmt.Errorf("store: change feed column: %w", err)
		}
	}
	if _, err := db.ExecContext(ctx, changesSchema); err != nil {
		return fmt.Errorf("store: change feed: %w", err)
	}
	return nil
}

// StateChanges is the answer of GET /_fake/state?since=N: the sessions whose row changed after
// change number N, ordered by session_id, and Cursor, the N to ask with next. Full says the
// answer is a snapshot of every session instead (since=0, a cursor from before a reset or from
// another database, or a front of a real Laravel app, which has no change feed and always
// answers Full with Cursor 0): a session the reader holds and Sessions lacks was deleted.
type StateChanges struct {
	Sessions []SessionState `json:"sessions"`
	Cursor   int64          `json:"cursor"`
	Full     bool           `json:"full"`
}

// changesSince reads the change feed after since in one read transaction (one snapshot for the
// cursor and the rows).
func (s *store) changesSince(ctx context.Context, since int64) (StateChanges, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return StateChanges{}, fmt.Errorf("store: changes: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read only
	var seq, resetSeq int64
	if err := tx.QueryRowContext(ctx, `SELECT seq, reset_seq FROM wagate_state_cursor WHERE id = 1`).Scan(&seq, &resetSeq); err != nil {
		return StateChanges{}, fmt.Errorf("store: changes cursor: %w", err)
	}
	out := StateChanges{Cursor: seq, Full: since <= 0 || since < resetSeq || since > seq}
	q, args := `SELECT `+sessionColumns+` FROM whatsapp_sessions ORDER BY session_id`, []any(nil)
	if !out.Full {
		// Ordered by change_seq, so SQLite walks the change_seq index from the cursor instead of
		// scanning every row in session_id order (11 ms at 10,000 sessions for no change).
		q, args = `SELECT `+sessionColumns+` FROM whatsapp_sessions WHERE change_seq > ? ORDER BY change_seq`, []any{since}
	}
	if out.Sessions, err = querySessions(ctx, tx, q, args...); err != nil {
		return StateChanges{}, err
	}
	slices.SortFunc(out.Sessions, func(a, b SessionState) int { return strings.Compare(a.SessionID, b.SessionID) })
	return out, nil
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// querySessions scans every row q answers.
func querySessions(ctx context.Context, db querier, q string, args ...any) ([]SessionState, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: sessions: %w", err)
	}
	defer rows.Close()
	out := []SessionState{}
	for rows.Next() {
		st, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("store: scan session: %w", err)
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: sessions: %w", err)
	}
	return out, nil
}

// StateSince returns the sessions changed after change number since (see StateChanges); since 0
// is a full snapshot. In front of a real Laravel app (no change feed) every answer is a full
// snapshot with Cursor 0.
func (s *Server) StateSince(ctx context.Context, since int64) (StateChanges, error) {
	if s.upstream != nil {
		ss, err := s.store.sessions(ctx)
		if err != nil {
			return StateChanges{}, err
		}
		return StateChanges{Sessions: ss, Full: true}, nil
	}
	return s.store.changesSince(ctx, since)
}

// resetChangesSQL moves the feed past the deletions of a reset: every cursor taken before it is
// answered with a full snapshot.
const resetChangesSQL = `UPDATE wagate_state_cursor SET seq = seq + 1, reset_seq = seq + 1 WHERE id = 1;`
