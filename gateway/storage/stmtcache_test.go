package storage

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	waLog "go.mau.fi/whatsmeow/util/log"
	"modernc.org/sqlite"
)

// oneConnPool is a SQLite pool of one connection whose statements are kept up to size, with a
// table t(k INTEGER PRIMARY KEY, v TEXT).
func oneConnPool(t *testing.T, size int) *sql.DB {
	t.Helper()
	base, err := sqlite.NewConnector(SQLiteDSN(filepath.Join(t.TempDir(), "t.db"), 0))
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(stmtCacheConnector{Connector: base, size: size})
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { _ = db.Close() })
	if _, err := db.Exec(`CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)`); err != nil {
		t.Fatal(err)
	}
	return db
}

// cacheOf reads the pool's one connection's kept statements: how many were compiled for it so
// far and how many it holds.
func cacheOf(t *testing.T, db *sql.DB) (prepared, kept int) {
	t.Helper()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Raw(func(dc any) error {
		c := dc.(*stmtCacheConn)
		c.mu.Lock()
		defer c.mu.Unlock()
		prepared, kept = c.prepared, len(c.stmts)
		if kept != c.lru.Len() {
			return fmt.Errorf("%d statements by text, %d in the LRU list", kept, c.lru.Len())
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return prepared, kept
}

func TestEachSQLTextIsCompiledOncePerConnection(t *testing.T) {
	db := oneConnPool(t, stmtCacheSize)
	before, _ := cacheOf(t, db)
	for i := range 50 {
		if _, err := db.Exec(`INSERT INTO t (k, v) VALUES (?, ?)`, i, fmt.Sprint("v", i)); err != nil {
			t.Fatal(err)
		}
		var v string
		if err := db.QueryRow(`SELECT v FROM t WHERE k = ?`, i).Scan(&v); err != nil || v != fmt.Sprint("v", i) {
			t.Fatalf("row %d: %q, %v", i, v, err)
		}
	}
	if after, _ := cacheOf(t, db); after-before != 2 {
		t.Fatalf("50 INSERTs and 50 SELECTs of two texts compiled %d statements, want 2", after-before)
	}
}

func TestTheSameQueryNestedInATransactionRunsOnAStatementOfItsOwn(t *testing.T) {
	db := oneConnPool(t, stmtCacheSize)
	for k := 1; k <= 3; k++ {
		if _, err := db.Exec(`INSERT INTO t (k, v) VALUES (?, ?)`, k, "x"); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	const q = `SELECT k FROM t WHERE k <= ? ORDER BY k`
	outer, err := tx.Query(q, 3)
	if err != nil {
		t.Fatal(err)
	}
	var seen []int
	for outer.Next() {
		var k int
		if err := outer.Scan(&k); err != nil {
			t.Fatal(err)
		}
		seen = append(seen, k)
		// The same text while the outer rows still step through its statement.
		var inner int
		if err := tx.QueryRow(q, 1).Scan(&inner); err != nil || inner != 1 {
			t.Fatalf("nested query: %d, %v", inner, err)
		}
	}
	if err := outer.Err(); err != nil {
		t.Fatal(err)
	}
	if err := outer.Close(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(seen) != "[1 2 3]" {
		t.Fatalf("outer rows %v, want [1 2 3] (the nested use must not reset them)", seen)
	}
	// Released: the kept statement serves the next use again.
	var n int
	if err := tx.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("count: %d, %v", n, err)
	}
}

func TestAStatementWhoseRunFailedIsCompiledAgainForTheNextCall(t *testing.T) {
	db := oneConnPool(t, stmtCacheSize)
	const ins = `INSERT INTO t (k, v) VALUES (?, ?)`
	if _, err := db.Exec(ins, 1, "a"); err != nil {
		t.Fatal(err)
	}
	before, keptBefore := cacheOf(t, db)
	if _, err := db.Exec(ins, 1, "b"); err == nil {
		t.Fatal("a second row with key 1 was accepted")
	}
	if _, kept := cacheOf(t, db); kept != keptBefore-1 {
		t.Fatalf("after the failed run %d statements kept, want %d (the failed one finalized)", kept, keptBefore-1)
	}
	if _, err := db.Exec(ins, 2, "c"); err != nil {
		t.Fatal(err)
	}
	if after, _ := cacheOf(t, db); after != before+1 {
		t.Fatalf("compiled %d statements after the failure, want 1", after-before)
	}
	var v string
	if err := db.QueryRow(`SELECT group_concat(v, ',') FROM (SELECT v FROM t ORDER BY k)`).Scan(&v); err != nil || v != "a,c" {
		t.Fatalf("rows %q, %v; want a,c", v, err)
	}
}

func TestKeptStatementsAreBoundedAndOnesInUseAreNotFinalized(t *testing.T) {
	db := oneConnPool(t, 2)
	for k := 1; k <= 3; k++ {
		if _, err := db.Exec(fmt.Sprintf(`INSERT INTO t (k, v) VALUES (%d, 'v%d')`, k, k)); err != nil {
			t.Fatal(err)
		}
	}
	if _, kept := cacheOf(t, db); kept > 2 {
		t.Fatalf("%d statements kept, bound 2", kept)
	}
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	open, err := tx.Query(`SELECT v FROM t ORDER BY k`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := 0; open.Next(); i++ {
		var v string
		if err := open.Scan(&v); err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
		// Three other texts while the open rows hold theirs: the cache must evict around it.
		for j := range 3 {
			var n int
			if err := tx.QueryRow(fmt.Sprintf(`SELECT count(*) + %d FROM t`, 10*i+j)).Scan(&n); err != nil || n != 3+10*i+j {
				t.Fatalf("query %d/%d: %d, %v", i, j, n, err)
			}
		}
	}
	if err := open.Close(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[v1 v2 v3]" {
		t.Fatalf("open rows %v, want [v1 v2 v3]", got)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, kept := cacheOf(t, db); kept > 2 {
		t.Fatalf("%d statements kept, bound 2", kept)
	}
}

// BenchmarkWhatsmeowDecryptionStoreWork times the store work whatsmeow does for each message it
// decrypts from an established chat (its Signal session read and written back, the sender's
// identity checked and put) on storage.Open's SQLite database, with each call's SQL compiled
// again (reparsed: the driver's own way) and with the connection's compiled statements kept
// (kept: stmtcache.go).
func BenchmarkWhatsmeowDecryptionStoreWork(b *testing.B) {
	for _, mode := range []struct {
		name    string
		reparse bool
	}{{"reparsed", true}, {"kept", false}} {
		b.Run(mode.name, func(b *testing.B) {
			ctx := context.Background()
			db, err := Open(ctx, Options{DataDir: b.TempDir(), reparseStatements: mode.reparse})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = db.Close() })
			c := sqlstore.NewWithDB(db.SQL, string(db.Dialect), waLog.Noop)
			if err := c.Upgrade(ctx); err != nil {
				b.Fatal(err)
			}
			dev := c.NewDevice()
			jid := types.NewADJID("15550000001", 0, 7)
			dev.ID = &jid
			dev.Account = &waAdv.ADVSignedDeviceIdentity{Details: []byte{1}, AccountSignature: make([]byte, 64),
				AccountSignatureKey: make([]byte, 32), DeviceSignature: make([]byte, 64)}
			if err := c.PutDevice(ctx, dev); err != nil {
				b.Fatal(err)
			}
			decryptionWork(b, ctx, dev, 0) // the rows exist, as in an established chat
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				decryptionWork(b, ctx, dev, i)
			}
		})
	}
}

// decryptionWork is one message's store calls as whatsmeow's decryptDM makes them.
func decryptionWork(b *testing.B, ctx context.Context, dev *store.Device, i int) {
	const addr = "15550000002.0:0"
	session := make([]byte, 600)
	session[0] = byte(i)
	var key [32]byte
	key[0] = 1
	if _, err := dev.Sessions.GetSession(ctx, addr); err != nil {
		b.Fatal(err)
	}
	if ok, err := dev.Identities.IsTrustedIdentity(ctx, addr, key); err != nil || !ok {
		b.Fatal(ok, err)
	}
	if err := dev.Identities.PutIdentity(ctx, addr, key); err != nil {
		b.Fatal(err)
	}
	if err := dev.Sessions.PutSession(ctx, addr, session); err != nil {
		b.Fatal(err)
	}
}
