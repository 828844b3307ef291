package fakelaravel

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver

	"wagate/gateway/laravel"
)

// schema is what a Laravel migration would create. The sessions table is named whatsapp_sessions
// because Laravel's database session driver owns a table called sessions.
const schema = `
CREATE TABLE IF NOT EXISTS whatsapp_sessions (
	id                INTEGER PRIMARY KEY AUTOINCREMENT,
	session_id        VARCHAR(64) NOT NULL UNIQUE,
	estado_qr         VARCHAR(16) NOT NULL DEFAULT 'pending',
	status_version    INTEGER NOT NULL DEFAULT 0,
	status_changed_at DATETIME NULL,
	qr                TEXT NULL,
	qr_version        INTEGER NOT NULL DEFAULT 0,
	qr_generated_at   DATETIME NULL,
	enabled           TINYINT(1) NOT NULL DEFAULT 1,
	created_at        DATETIME NULL,
	updated_at        DATETIME NULL
);
CREATE TABLE IF NOT EXISTS processed_batches (
	idempotency_key VARCHAR(255) PRIMARY KEY,
	endpoint        VARCHAR(64) NOT NULL,
	fingerprint     CHAR(64) NOT NULL,
	status_code     INTEGER NOT NULL,
	response        TEXT NOT NULL,
	created_at      DATETIME NOT NULL
);`

// TimeLayout is how timestamps are stored and reported in SessionState (UTC, Laravel's
// "Y-m-d H:i:s" with microseconds).
const TimeLayout = "2006-01-02 15:04:05.000000"

const timeLayout = TimeLayout

// errUnknownSession is returned by legacy writes when unknown sessions are rejected.
var errUnknownSession = errors.New("unknown session")

// store is the SQLite database: one writer connection (SQLite has one writer; a single connection
// avoids SQLITE_BUSY) and a pool of readers (WAL lets them read while the writer writes).
type store struct {
	w, r    *sql.DB
	path    string
	removal string // directory removed on close when the database was a temporary file
	// applyStmts are the prepared version-guarded writes, by kind and [update only, upsert].
	applyStmts map[batchKind][2]*sql.Stmt
}

func openStore(ctx context.Context, path string) (*store, error) {
	s := &store{path: path}
	if path == "" {
		dir, err := os.MkdirTemp("", "fakelaravel-*")
		if err != nil {
			return nil, fmt.Errorf("store: temp dir: %w", err)
		}
		s.path, s.removal = filepath.Join(dir, "laravel.sqlite"), dir
	}
	dsn := "file:" + (&url.URL{Path: s.path}).EscapedPath() +
		"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=synchronous(NORMAL)"
	var err error
	if s.w, err = sql.Open("sqlite", dsn); err != nil {
		return nil, fmt.Errorf("store: open %s: %w", s.path, err)
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxLifetime(0)
	if _, err = s.w.ExecContext(ctx, schema+messagesSchema); err != nil {
		s.close()
		return nil, fmt.Errorf("store: migrate %s: %w", s.path, err)
	}
	if err = migrateChanges(ctx, s.w); err != nil {
		s.close()
		return nil, fmt.Errorf("store: migrate %s: %w", s.path, err)
	}
	if s.r, err = sql.Open("sqlite", dsn+"&_pragma=query_only(1)"); err != nil {
		s.close()
		return nil, fmt.Errorf("store: open readers %s: %w", s.path, err)
	}
	s.r.SetMaxOpenConns(4)
	s.r.SetMaxIdleConns(4)
	s.applyStmts = map[batchKind][2]*sql.Stmt{}
	for kind, qs := range map[batchKind][2]string{kindStatus: {updateStatusSQL, upsertStatusSQL}, kindQR: {updateQRSQL, upsertQRSQL}} {
		var pair [2]*sql.Stmt
		for i, q := range qs {
			if pair[i], err = s.w.PrepareContext(ctx, q); err != nil {
				s.close()
				return nil, fmt.Errorf("store: prepare: %w", err)
			}
		}
		s.applyStmts[kind] = pair
	}
	return s, nil
}

// openReadOnlyStore opens another application's database (a real Laravel app's) for reading
// only: no schema is created and no statement is prepared; every write method fails.
func openReadOnlyStore(ctx context.Context, path string) (*store, error) {
	s := &store{path: path}
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?mode=ro&_pragma=busy_timeout(5000)&_pragma=query_only(1)"
	var err error
	if s.r, err = sql.Open("sqlite", dsn); err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	s.r.SetMaxOpenConns(2)
	s.r.SetMaxIdleConns(2)
	if _, err := s.sessions(ctx); err != nil {
		s.r.Close()
		return nil, fmt.Errorf("store: %s is not a wagate Laravel database: %w", path, err)
	}
	return s, nil
}

func (s *store) close() error {
	var errs []error
	for _, pair := range s.applyStmts {
		for _, st := range pair {
			if st != nil {
				errs = append(errs, st.Close())
			}
		}
	}
	s.applyStmts = nil
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	if s.w != nil {
		errs = append(errs, s.w.Close())
	}
	if s.removal != "" {
		errs = append(errs, os.RemoveAll(s.removal))
	}
	return errors.Join(errs...)
}

func dbTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// storedBatch is a processed_batches row.
type storedBatch struct {
	fingerprint string
	status      int
	response    []byte
}

// lookupBatch returns the stored answer for key, or nil when the key was never processed.
func (s *store) lookupBatch(ctx context.Context, key string) (*storedBatch, error) {
	var b storedBatch
	err := s.r.QueryRowContext(ctx,
		`SELECT fingerprint, status_code, response FROM processed_batches WHERE idempotency_key = ?`, key).
		Scan(&b.fingerprint, &b.status, &b.response)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: lookup batch: %w", err)
	}
	return &b, nil
}

// batchRecord is what a processed batch leaves behind for replays.
type batchRecord struct {
	key, endpoint, fingerprint string
}

// recordAndCommit stores rec (when not nil) with its 200 response body as a processed batch,
// then commits tx.
func recordAndCommit(ctx context.Context, tx *sql.Tx, rec *batchRecord, body []byte, ts string) error {
	if rec != nil {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO processed_batches (idempotency_key, endpoint, fingerprint, status_code, response, created_at) VALUES (?, ?, ?, 200, ?, ?)`,
			rec.key, rec.endpoint, rec.fingerprint, string(body), ts); err != nil {
			return fmt.Errorf("store: record batch: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// versionedRow is one batch item reduced to what the upsert needs.
type versionedRow struct {
	sessionID string
	value     string // estado_qr or qr
	version   int64
	at        time.Time
}

// Upserts guarded by version: only a newer version overwrites; 0 rows affected means stale.
const (
	upsertStatusSQL = `INSERT INTO whatsapp_sessions (session_id, estado_qr, status_version, status_changed_at, enabled, created_at, updated_at)
VALUES (?1, ?2, ?3, ?4, 1, ?5, ?5)
ON CONFLICT(session_id) DO UPDATE SET estado_qr = excluded.estado_qr, status_version = excluded.status_version,
	status_changed_at = excluded.status_changed_at, updated_at = excluded.updated_at
WHERE excluded.status_version > whatsapp_sessions.status_version`
	updateStatusSQL = `UPDATE whatsapp_sessions SET estado_qr = ?2, status_version = ?3, status_changed_at = ?4, updated_at = ?5
WHERE session_id = ?1 AND status_version < ?3`
	upsertQRSQL = `INSERT INTO whatsapp_sessions (session_id, qr, qr_version, qr_generated_at, enabled, created_at, updated_at)
VALUES (?1, ?2, ?3, ?4, 1, ?5, ?5)
ON CONFLICT(session_id) DO UPDATE SET qr = excluded.qr, qr_version = excluded.qr_version,
	qr_generated_at = excluded.qr_generated_at, updated_at = excluded.updated_at
WHERE excluded.qr_version > whatsapp_sessions.qr_version`
	updateQRSQL = `UPDATE whatsapp_sessions SET qr = ?2, qr_version = ?3, qr_generated_at = ?4, updated_at = ?5
WHERE session_id = ?1 AND qr_version < ?3`
)

// batchKind selects the columns a batch writes.
type batchKind int

const (
	kindStatus batchKind = iota
	kindQR
)

// applyBatch applies rows in one transaction with the version guard and, when rec is set, stores
// the response under its idempotency key in the same transaction. With createUnknown false an
// item for a session that does not exist fails (listed in Errors) instead of creating it. The
// items injected faults withheld count as failed (the refused ones listed in Errors).
func (s *store) applyBatch(ctx context.Context, kind batchKind, rows []versionedRow, withheld withheldItems, createUnknown bool, rec *batchRecord, now time.Time) (laravel.BatchResult, []byte, error) {
	res := laravel.BatchResult{Errors: []laravel.ItemError{}}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return res, nil, fmt.Errorf("store: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op

	pick := 0
	if createUnknown {
		pick = 1
	}
	stmt := tx.StmtContext(ctx, s.applyStmts[kind][pick])
	defer stmt.Close()
	ts := dbTime(now)
	for _, row := range rows {
		r, err := stmt.ExecContext(ctx, row.sessionID, row.value, row.version, dbTime(row.at), ts)
		if err != nil {
			return res, nil, fmt.Errorf("store: apply %s: %w", row.sessionID, err)
		}
		n, err := r.RowsAffected()
		if err != nil {
			return res, nil, fmt.Errorf("store: rows affected: %w", err)
		}
		switch {
		case n > 0:
			res.Updated++
		case createUnknown:
			res.Stale++
		default:
			var one int
			err := tx.QueryRowContext(ctx, `SELECT 1 FROM whatsapp_sessions WHERE session_id = ?`, row.sessionID).Scan(&one)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				res.Failed++
				res.Errors = append(res.Errors, laravel.ItemError{SessionID: row.sessionID, Error: "unknown session"})
			case err != nil:
				return res, nil, fmt.Errorf("store: exists %s: %w", row.sessionID, err)
			default:
				res.Stale++
			}
		}
	}
	res.Failed += len(withheld.refused) + withheld.unaccounted
	res.Errors = append(res.Errors, withheld.refused...)
	res.Success = res.Failed == 0
	body, err := json.Marshal(res)
	if err != nil {
		return res, nil, fmt.Errorf("store: encode result: %w", err)
	}
	if err := recordAndCommit(ctx, tx, rec, body, ts); err != nil {
		return res, nil, err
	}
	return res, body, nil
}

// setLegacy overwrites a session's estado_qr or QR without any version (the seed's legacy
// behaviour: last writer wins).
func (s *store) setLegacy(ctx context.Context, kind batchKind, sessionID, value string, createUnknown bool, now time.Time) error {
	ts := dbTime(now)
	var q string
	switch {
	case kind == kindStatus && createUnknown:
		q = `INSERT INTO whatsapp_sessions (session_id, estado_qr, status_changed_at, enabled, created_at, updated_at) VALUES (?1, ?2, ?3, 1, ?3, ?3)
ON CONFLICT(session_id) DO UPDATE SET estado_qr = excluded.estado_qr, status_changed_at = excluded.status_changed_at, updated_at = excluded.updated_at`
	case kind == kindStatus:
		q = `UPDATE whatsapp_sessions SET estado_qr = ?2, status_changed_at = ?3, updated_at = ?3 WHERE session_id = ?1`
	case createUnknown:
		q = `INSERT INTO whatsapp_sessions (session_id, qr, qr_generated_at, enabled, created_at, updated_at) VALUES (?1, ?2, ?3, 1, ?3, ?3)
ON CONFLICT(session_id) DO UPDATE SET qr = excluded.qr, qr_generated_at = excluded.qr_generated_at, updated_at = excluded.updated_at`
	default:
		q = `UPDATE whatsapp_sessions SET qr = ?2, qr_generated_at = ?3, updated_at = ?3 WHERE session_id = ?1`
	}
	r, err := s.w.ExecContext(ctx, q, sessionID, value, ts)
	if err != nil {
		return fmt.Errorf("store: legacy write %s: %w", sessionID, err)
	}
	if n, err := r.RowsAffected(); err == nil && n == 0 {
		return errUnknownSession
	}
	return nil
}

// SessionState is one row of whatsapp_sessions as /_fake/state reports it. Timestamps are UTC in
// TimeLayout, empty when NULL: StatusChangedAt and QRGeneratedAt are the times the gateway sent
// with the applied item (the time of the write for legacy endpoints); CreatedAt and UpdatedAt are
// when the row was written.
type SessionState struct {
	SessionID       string         `json:"session_id"`
	EstadoQR        laravel.Status `json:"estado_qr"`
	StatusVersion   int64          `json:"status_version"`
	StatusChangedAt string         `json:"status_changed_at,omitempty"`
	QR              string         `json:"qr,omitempty"`
	QRVersion       int64          `json:"qr_version"`
	QRGeneratedAt   string         `json:"qr_generated_at,omitempty"`
	Enabled         bool           `json:"enabled"`
	CreatedAt       string         `json:"created_at"`
	UpdatedAt       string         `json:"updated_at"`
}

const sessionColumns = `session_id, estado_qr, status_version, COALESCE(status_changed_at, ''), COALESCE(qr, ''),
	qr_version, COALESCE(qr_generated_at, ''), enabled, COALESCE(created_at, ''), COALESCE(updated_at, '')`

type scanner interface{ Scan(dest ...any) error }

func scanSession(sc scanner) (SessionState, error) {
	var st SessionState
	var status string
	err := sc.Scan(&st.SessionID, &status, &st.StatusVersion, &st.StatusChangedAt, &st.QR,
		&st.QRVersion, &st.QRGeneratedAt, &st.Enabled, &st.CreatedAt, &st.UpdatedAt)
	st.EstadoQR = laravel.Status(status)
	return st, err
}

// session returns one session, or sql.ErrNoRows (wrapped) when it does not exist.
func (s *store) session(ctx context.Context, sessionID string) (SessionState, error) {
	st, err := scanSession(s.r.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM whatsapp_sessions WHERE session_id = ?`, sessionID))
	if err != nil {
		return st, fmt.Errorf("store: session %s: %w", sessionID, err)
	}
	return st, nil
}

// sessions returns every session ordered by session_id.
func (s *store) sessions(ctx context.Context) ([]SessionState, error) {
	return querySessions(ctx, s.r, `SELECT `+sessionColumns+` FROM whatsapp_sessions ORDER BY session_id`)
}

// setEnabled creates the session if needed and sets its enabled flag.
func (s *store) setEnabled(ctx context.Context, sessionID string, enabled bool, now time.Time) error {
	ts := dbTime(now)
	_, err := s.w.ExecContext(ctx, `INSERT INTO whatsapp_sessions (session_id, enabled, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)
ON CONFLICT(session_id) DO UPDATE SET enabled = excluded.enabled, updated_at = excluded.updated_at`, sessionID, enabled, ts)
	if err != nil {
		return fmt.Errorf("store: set enabled %s: %w", sessionID, err)
	}
	return nil
}

// reset deletes every session and processed batch.
func (s *store) reset(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM whatsapp_sessions; DELETE FROM processed_batches; DELETE FROM whatsapp_messages; DELETE FROM whatsapp_receipts;`+resetChangesSQL); err != nil {
		return fmt.Errorf("store: reset: %w", err)
	}
	return nil
}
