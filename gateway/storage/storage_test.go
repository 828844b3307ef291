package storage

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"wagate/gateway/internal/pgtest"
	"wagate/gateway/laravel"
)

// openTemp opens a fresh SQLite store in a temporary folder, closed when t ends.
func openTemp(t testing.TB) *DB {
	t.Helper()
	db, err := Open(context.Background(), Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// eachDialect runs spec on a fresh store of each dialect: SQLite always, PostgreSQL unless -short
// (a server started for the test on a free port; skipped when none is installed, see pgtest).
func eachDialect(t *testing.T, spec func(t *testing.T, db *DB)) {
	t.Run("sqlite", func(t *testing.T) { spec(t, openTemp(t)) })
	t.Run("postgres", func(t *testing.T) {
		if testing.Short() {
			t.Skip("starts PostgreSQL")
		}
		db, err := Open(context.Background(), Options{DSN: pgtest.Start(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		spec(t, db)
	})
}

func TestSQLiteDSNUsesModerncPragmaForm(t *testing.T) {
	dsn := SQLiteDSN("/data/wagate.db", 5*time.Second)
	for _, want := range []string{"foreign_keys%281%29", "journal_mode%28WAL%29", "busy_timeout%285000%29", "_txlock=immediate"} {
		if !strings.Contains(dsn, want) {
			t.Errorf("DSN %q lacks %q", dsn, want)
		}
	}
	if strings.Contains(dsn, "_busy_timeout") {
		t.Errorf("DSN %q uses the _busy_timeout form modernc ignores", dsn)
	}
}

func TestOpenAppliesPragmas(t *testing.T) {
	db := openTemp(t)
	ctx := context.Background()
	var fk int
	var mode string
	var busy int
	if err := db.SQL.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil {
		t.Fatal(err)
	}
	if err := db.SQL.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if err := db.SQL.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy); err != nil {
		t.Fatal(err)
	}
	if fk != 1 || mode != "wal" || busy != 30000 {
		t.Fatalf("foreign_keys=%d journal_mode=%s busy_timeout=%d", fk, mode, busy)
	}
	if db.Dialect != SQLite || filepath.Base(db.Where) != SQLiteFile {
		t.Fatalf("dialect %s where %s", db.Dialect, db.Where)
	}
}

func TestResolveRejectsUnknownDSN(t *testing.T) {
	for _, dsn := range []string{"mysql://x", "redis://localhost"} {
		if _, err := Open(context.Background(), Options{DSN: dsn}); err == nil {
			t.Errorf("DSN %q accepted", dsn)
		}
	}
	if _, err := Open(context.Background(), Options{}); err == nil {
		t.Error("no data dir and no DSN accepted")
	}
}

func TestResolvePostgresHidesCredentials(t *testing.T) {
	d, _, where, err := resolve(Options{DSN: "postgres://user:hunter2@db.example:5432/wagate?sslmode=disable"})
	if err != nil || d != Postgres {
		t.Fatalf("dialect %s err %v", d, err)
	}
	if strings.Contains(where, "hunter2") || !strings.Contains(where, "db.example") {
		t.Fatalf("where %q", where)
	}
}

func TestNextEpochIsStrictlyIncreasingAndHonoursFloor(t *testing.T) {
	db := openTemp(t)
	r := NewRegistry(db, nil)
	defer r.Close(context.Background())
	ctx := context.Background()
	e1, err := r.NextEpoch(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	e2, _ := r.NextEpoch(ctx, 100)
	e3, _ := r.NextEpoch(ctx, 50) // clock went backwards
	e4, _ := r.NextEpoch(ctx, 1000)
	if e1 != 100 || e2 != 101 || e3 != 102 || e4 != 1000 {
		t.Fatalf("epochs %d %d %d %d", e1, e2, e3, e4)
	}
}

func TestCleanStopMarkIsReadOnce(t *testing.T) {
	db := openTemp(t)
	r := NewRegistry(db, nil)
	defer r.Close(context.Background())
	ctx := context.Background()
	if clean, err := r.TakeCleanStop(ctx); err != nil || clean {
		t.Fatalf("a fresh store: clean %v, %v; want false", clean, err)
	}
	for range 2 { // marking twice is one mark
		if err := r.MarkCleanStop(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if clean, err := r.TakeCleanStop(ctx); err != nil || !clean {
		t.Fatalf("after a clean stop: clean %v, %v; want true", clean, err)
	}
	if clean, _ := r.TakeCleanStop(ctx); clean {
		t.Fatal("the mark must be taken once: a crash of the run that read it would look clean")
	}
}

func TestRegistryPutFlushLoadAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	db, err := Open(ctx, Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	r := NewRegistry(db, nil)
	t0 := time.UnixMilli(1_700_000_000_000)
	r.Put(Record{SessionID: "b", Status: laravel.StatusPending, CreatedAt: t0, UpdatedAt: t0})
	r.Put(Record{SessionID: "a", DeviceJID: "123.0:1@s.whatsapp.net", Status: laravel.StatusConnected, CreatedAt: t0, UpdatedAt: t0})
	r.Put(Record{SessionID: "b", Status: laravel.StatusExpired, CreatedAt: t0, UpdatedAt: t0.Add(time.Second)}) // coalesced
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()

	db, err = Open(ctx, Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	recs, err := NewRegistry(db, nil).Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].SessionID != "a" || recs[0].DeviceJID == "" || recs[1].Status != laravel.StatusExpired ||
		!recs[1].CreatedAt.Equal(t0) || !recs[1].UpdatedAt.Equal(t0.Add(time.Second)) {
		t.Fatalf("loaded %+v", recs)
	}
}

// A thousand sessions changing status at once must all be stored: the registry coalesces them
// into few transactions and SQLite never answers SQLITE_BUSY.
func TestRegistrySurvivesAThousandConcurrentWriters(t *testing.T) {
	db := openTemp(t)
	r := NewRegistry(db, nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			now := time.Now()
			r.Put(Record{SessionID: fmt.Sprintf("s%04d", i), Status: laravel.StatusConnected, CreatedAt: now, UpdatedAt: now})
			// Direct concurrent writes too, the way whatsmeow's store writes during pairings.
			if _, err := db.SQL.ExecContext(ctx, `INSERT INTO wagate_meta (name, value) VALUES ($1, $2)
				ON CONFLICT (name) DO UPDATE SET value = excluded.value`, fmt.Sprintf("k%d", i%50), i); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	recs, err := r.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1000 {
		t.Fatalf("stored %d of 1000 records", len(recs))
	}
}

// A store written before sessions could be parked gains the column on open, keeps its records
// (not parked), and then keeps a parked reason across a reopen.
func TestAStoreFromBeforeParkingGainsTheColumnAndKeepsParkedReasons(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	db, err := Open(ctx, Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	// Rebuild the table the way the previous release created it.
	for _, stmt := range []string{
		`DROP TABLE wagate_sessions`,
		`CREATE TABLE wagate_sessions (session_id TEXT PRIMARY KEY, device_jid TEXT NOT NULL DEFAULT '',
			status TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)`,
		`INSERT INTO wagate_sessions VALUES ('old', '1.0:1@s.whatsapp.net', 'connected', 1, 1)`,
	} {
		if _, err := db.SQL.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	_ = db.Close()

	db, err = Open(ctx, Options{DataDir: dir})
	if err != nil {
		t.Fatalf("opening a store from before the parked column: %v", err)
	}
	r := NewRegistry(db, nil)
	recs, err := r.Load(ctx)
	if err != nil || len(recs) != 1 || recs[0].Parked != "" || recs[0].DeviceJID == "" {
		t.Fatalf("old record after the migration: %+v, %v", recs, err)
	}
	now := time.UnixMilli(1_700_000_000_000)
	r.Put(Record{SessionID: "old", DeviceJID: recs[0].DeviceJID, Status: laravel.StatusDisconnected,
		CreatedAt: now, UpdatedAt: now, Parked: ParkedStreamReplaced})
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()

	db, err = Open(ctx, Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	recs, err = NewRegistry(db, nil).Load(ctx)
	if err != nil || len(recs) != 1 || recs[0].Parked != ParkedStreamReplaced {
		t.Fatalf("parked reason after a reopen: %+v, %v", recs, err)
	}
}
