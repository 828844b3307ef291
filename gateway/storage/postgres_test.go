package storage

import (
	"context"
	"testing"
	"time"

	"wagate/gateway/internal/pgtest"
	"wagate/gateway/laravel"
)

func TestRegistryOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	dsn := pgtest.Start(t)
	ctx := context.Background()
	db, err := Open(ctx, Options{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.Dialect != Postgres {
		t.Fatalf("dialect %s", db.Dialect)
	}
	if err := db.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	r := NewRegistry(db, nil)
	e1, err := r.NextEpoch(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	if e2, _ := r.NextEpoch(ctx, 50); e1 != 100 || e2 != 101 {
		t.Fatalf("epochs %d %d", e1, e2)
	}
	if err := r.MarkCleanStop(ctx); err != nil {
		t.Fatal(err)
	}
	if a, _ := r.TakeCleanStop(ctx); !a {
		t.Fatal("clean stop mark not read")
	}
	if b, _ := r.TakeCleanStop(ctx); b {
		t.Fatal("clean stop mark read twice")
	}
	now := time.UnixMilli(1_700_000_000_000)
	r.Put(Record{SessionID: "a", Status: laravel.StatusPending, CreatedAt: now, UpdatedAt: now})
	r.Put(Record{SessionID: "a", DeviceJID: "1555.0:1@s.whatsapp.net", Status: laravel.StatusConnected, CreatedAt: now, UpdatedAt: now.Add(time.Second)})
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	recs, err := r.Load(ctx)
	if err != nil || len(recs) != 1 || recs[0].Status != laravel.StatusConnected || recs[0].DeviceJID == "" {
		t.Fatalf("%+v %v", recs, err)
	}
	// Reopening runs the migrations again without harm.
	db2, err := Open(ctx, Options{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	db2.Close()
}
