package storage

import (
	"context"
	"sync"
	"testing"

	"wagate/gateway/internal/pgtest"
)

// Replicas of a cluster start together on one empty database: each must create or find the
// tables, none may fail on the other's CREATE (PostgreSQL's CREATE TABLE IF NOT EXISTS is not
// atomic: `type "wagate_sessions" already exists`).
func TestReplicasStartingTogetherOnAnEmptyPostgresAllOpenTheStore(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	dsn := pgtest.Start(t)
	const replicas = 6
	for round := range 3 {
		if round > 0 {
			// An empty database again: drop what the previous round created.
			db, err := Open(context.Background(), Options{DSN: dsn})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.SQL.Exec(`DROP TABLE wagate_sessions; DROP TABLE wagate_meta`); err != nil {
				t.Fatal(err)
			}
			db.Close()
		}
		var wg sync.WaitGroup
		errs := make([]error, replicas)
		start := make(chan struct{})
		for i := range replicas {
			wg.Go(func() {
				<-start
				db, err := Open(context.Background(), Options{DSN: dsn})
				if err == nil {
					db.Close()
				}
				errs[i] = err
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("round %d, replica %d: %v", round, i, err)
			}
		}
	}
}
