// Package storage owns the gateway's database: opening it (SQLite via modernc.org/sqlite under the
// data dir by default, Postgres via pgx when a DSN is given), the connection settings that let a
// thousand concurrent pairings share one SQLite file without SQLITE_BUSY, and the gateway's own
// tables: the session registry (which session_id owns which WhatsApp device, and its last status),
// the version epoch that keeps event versions monotonic across restarts, and the message journal
// (customers' messages and receipts kept outside Redis until Laravel settled them, journal.go).
//
// whatsmeow's sqlstore lives in the same database (see gateway/whatsapp): one pool, one file.
package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"modernc.org/sqlite"               // the "sqlite" database/sql driver (NewConnector)
)

// Dialect names the SQL flavour of a DB; the values are the database/sql driver names, which
// whatsmeow's sqlstore also accepts as dialect names.
type Dialect string

// Supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "pgx"
)

// SQLiteFile is the file name of the SQLite database inside the data dir.
const SQLiteFile = "wagate.db"

// Options says where the database is.
type Options struct {
	// DataDir holds the SQLite file when DSN is empty; created if missing.
	DataDir string
	// DSN, when set, selects Postgres (postgres:// or postgresql:// URL, or key=value form).
	// A DSN starting with "file:" or ending in ".db" selects SQLite at that path instead.
	DSN string
	// BusyTimeout is SQLite's busy_timeout; zero means 30 s.
	BusyTimeout time.Duration
	// MaxOpenConns bounds the pool; zero means 8 for SQLite (queueing in Go is fairer than
	// SQLite's sleeping busy handler) and 20 for Postgres.
	MaxOpenConns int

	// reparseStatements turns SQLite's per-connection statement cache off (stmtcache.go): the
	// driver compiles every call's SQL again, as before it (tests and benchmarks compare both).
	reparseStatements bool
}

// DB is the gateway's database handle, shared by the registry and whatsmeow's store.
type DB struct {
	// SQL is the pool.
	SQL *sql.DB
	// Dialect says which SQL flavour SQL speaks.
	Dialect Dialect
	// Where describes the database for logs without credentials (a file path or host/db).
	Where string
}

// Open opens (and creates when needed) the database described by o and creates the gateway's
// tables. The caller closes it.
func Open(ctx context.Context, o Options) (*DB, error) {
	dialect, dsn, where, err := resolve(o)
	if err != nil {
		return nil, err
	}
	db, err := openPool(dialect, dsn, !o.reparseStatements)
	if err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", where, err)
	}
	maxConns := o.MaxOpenConns
	if maxConns <= 0 {
		maxConns = 8
		if dialect == Postgres {
			maxConns = 20
		}
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	d := &DB{SQL: db, Dialect: dialect, Where: where}
	if err := d.migrate(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	return d, nil
}

// openPool opens the pool of dialect at dsn; a SQLite pool keeps each connection's compiled
// statements when cacheStatements is set (stmtcache.go).
func openPool(dialect Dialect, dsn string, cacheStatements bool) (*sql.DB, error) {
	if dialect != SQLite || !cacheStatements {
		return sql.Open(string(dialect), dsn)
	}
	base, err := sqlite.NewConnector(dsn)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(stmtCacheConnector{Connector: base, size: stmtCacheSize}), nil
}

// Close closes the pool.
func (d *DB) Close() error { return d.SQL.Close() }

// Ping checks that the database answers (for /readyz).
func (d *DB) Ping(ctx context.Context) error {
	if err := d.SQL.PingContext(ctx); err != nil {
		return fmt.Errorf("storage: ping %s: %w", d.Where, err)
	}
	return nil
}

// SQLiteDSN returns the modernc.org/sqlite DSN the gateway uses for a database file: foreign keys
// on (whatsmeow requires them), WAL, synchronous=NORMAL, a busy timeout, and BEGIN IMMEDIATE
// transactions so a read transaction never has to upgrade to a write lock (which fails with
// SQLITE_BUSY at once, whatever the busy timeout). modernc reads pragmas only in the
// _pragma=name(value) form; "_busy_timeout=N" would be silently ignored.
func SQLiteDSN(path string, busyTimeout time.Duration) string {
	if busyTimeout <= 0 {
		busyTimeout = 30 * time.Second
	}
	q := url.Values{}
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Set("_txlock", "immediate")
	return "file:" + path + "?" + q.Encode()
}

// DialectOf returns the dialect a store DSN selects (SQLite for an empty DSN: the data dir's
// file), the rule Open follows; "" when the DSN is none of the accepted forms.
func DialectOf(dsn string) Dialect {
	dsn = strings.TrimSpace(dsn)
	switch {
	case dsn == "" || strings.HasPrefix(dsn, "file:") || strings.HasSuffix(dsn, ".db"):
		return SQLite
	case strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://"),
		strings.Contains(dsn, "host=") || strings.Contains(dsn, "dbname="):
		return Postgres
	}
	return ""
}

func resolve(o Options) (Dialect, string, string, error) {
	dsn := strings.TrimSpace(o.DSN)
	switch {
	case dsn == "":
		if o.DataDir == "" {
			return "", "", "", errors.New("storage: neither a data dir nor a store DSN is set")
		}
		if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
			return "", "", "", fmt.Errorf("storage: create data dir: %w", err)
		}
		path := filepath.Join(o.DataDir, SQLiteFile)
		return SQLite, SQLiteDSN(path, o.BusyTimeout), path, nil
	case strings.HasPrefix(dsn, "file:") || strings.HasSuffix(dsn, ".db"):
		path := strings.TrimPrefix(dsn, "file:")
		if i := strings.IndexByte(path, '?'); i >= 0 {
			path = path[:i]
		}
		if dir := filepath.Dir(path); dir != "" {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return "", "", "", fmt.Errorf("storage: create database dir: %w", err)
			}
		}
		return SQLite, SQLiteDSN(path, o.BusyTimeout), path, nil
	case strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://"):
		u, err := url.Parse(dsn)
		if err != nil {
			return "", "", "", fmt.Errorf("storage: store DSN is not a valid URL")
		}
		return Postgres, dsn, "postgres " + u.Host + u.Path, nil
	case strings.Contains(dsn, "host=") || strings.Contains(dsn, "dbname="):
		return Postgres, dsn, "postgres (key=value DSN)", nil
	}
	return "", "", "", errors.New("storage: store DSN must be a postgres:// URL, a key=value Postgres DSN, or a file: SQLite path")
}

const schema = `
CREATE TABLE IF NOT EXISTS wagate_sessions (
	session_id TEXT PRIMARY KEY,
	device_jid TEXT NOT NULL DEFAULT '',
	status     TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	parked     TEXT NOT NULL DEFAULT '',
	epoch      BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS wagate_meta (
	name  TEXT PRIMARY KEY,
	value BIGINT NOT NULL
);
`

// migrateLockKey is the PostgreSQL advisory lock replicas starting together take around migrate.
const migrateLockKey = 0x77616761 // "waga"

// migrate creates the tables and columns this version needs. On PostgreSQL it holds an advisory
// lock meanwhile: replicas starting together on an empty database otherwise race on CREATE TABLE
// IF NOT EXISTS, which PostgreSQL does not make atomic (`type "wagate_sessions" already exists`).
func (d *DB) migrate(ctx context.Context) error {
	if d.Dialect != Postgres {
		return d.createTables(ctx)
	}
	conn, err := d.SQL.Conn(ctx)
	if err != nil {
		return fmt.Errorf("storage: connect to %s: %w", d.Where, err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrateLockKey); err != nil {
		return fmt.Errorf("storage: lock %s for its tables: %w", d.Where, err)
	}
	defer func() {
		// Unlocked even when ctx ended; a lock the unlock did not release ends with the session.
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrateLockKey)
	}()
	return d.createTables(ctx)
}

// createTables runs the schema and adds the columns later versions brought.
func (d *DB) createTables(ctx context.Context) error {
	for _, stmt := range strings.Split(schema+journalSchema, ";") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if _, err := d.SQL.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("storage: create tables in %s: %w", d.Where, err)
		}
	}
	// Stores created before the parked column existed gain it (SQLite has no ADD COLUMN IF NOT
	// EXISTS, so probe for it first).
	if _, err := d.SQL.ExecContext(ctx, `SELECT parked FROM wagate_sessions LIMIT 0`); err != nil {
		if _, err := d.SQL.ExecContext(ctx, `ALTER TABLE wagate_sessions ADD COLUMN parked TEXT NOT NULL DEFAULT ''`); err != nil {
			return fmt.Errorf("storage: add the parked column in %s: %w", d.Where, err)
		}
	}
	// ... and the epoch column (the writer's fencing token; 0 for rows written before it).
	if _, err := d.SQL.ExecContext(ctx, `SELECT epoch FROM wagate_sessions LIMIT 0`); err != nil {
		if _, err := d.SQL.ExecContext(ctx, `ALTER TABLE wagate_sessions ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0`); err != nil {
			return fmt.Errorf("storage: add the epoch column in %s: %w", d.Where, err)
		}
	}
	// ... and the journal the columns of the batch an item was sent in (NoteBatches) and of its
	// settlement (Settle).
	for _, col := range journalAddedColumns {
		name := strings.Fields(col)[0]
		if _, err := d.SQL.ExecContext(ctx, `SELECT `+name+` FROM wagate_journal LIMIT 0`); err == nil {
			continue
		}
		if _, err := d.SQL.ExecContext(ctx, `ALTER TABLE wagate_journal ADD COLUMN `+col); err != nil {
			return fmt.Errorf("storage: add the journal's column %s in %s: %w", name, d.Where, err)
		}
	}
	return nil
}
