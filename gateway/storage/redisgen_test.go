package storage

import (
	"context"
	"testing"
	"time"
)

func TestTheRedisDataSeenIsKeptAcrossReopens(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	db, err := Open(ctx, Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	r := NewRegistry(db, nil)
	if seen, err := r.RedisSeen(ctx); err != nil || seen != (RedisSeen{}) {
		t.Fatalf("a fresh store: %+v, %v; want nothing recorded", seen, err)
	}
	for _, s := range []RedisSeen{{Generation: 42, Run: 7}, {Generation: 1 << 61, Run: 1<<62 - 1}} {
		if err := r.SetRedisSeen(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	_ = r.Close(ctx)
	_ = db.Close()
	db, err = Open(ctx, Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r = NewRegistry(db, nil)
	defer r.Close(ctx)
	if seen, err := r.RedisSeen(ctx); err != nil || seen != (RedisSeen{Generation: 1 << 61, Run: 1<<62 - 1}) {
		t.Fatalf("after reopening: %+v, %v; want the last one recorded", seen, err)
	}
}

// A store written before the run was recorded holds the generation alone: its run reads 0 (not
// known, so a start cannot take the server for restarted).
func TestARedisGenerationRecordedWithoutARunReadsRunZero(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		if _, err := db.SQL.ExecContext(ctx, `INSERT INTO wagate_meta (name, value) VALUES ('redis_generation', 42)`); err != nil {
			t.Fatal(err)
		}
		r := NewRegistry(db, nil)
		defer r.Close(ctx)
		if seen, err := r.RedisSeen(ctx); err != nil || seen != (RedisSeen{Generation: 42}) {
			t.Fatalf("seen %+v, %v; want generation 42, run 0", seen, err)
		}
		if err := r.SetRedisSeen(ctx, RedisSeen{Generation: 43, Run: 9}); err != nil {
			t.Fatal(err)
		}
		if seen, err := r.RedisSeen(ctx); err != nil || seen != (RedisSeen{Generation: 43, Run: 9}) {
			t.Fatalf("seen %+v, %v; want both replaced", seen, err)
		}
	})
}

// The last Redis data loss stays recorded, for every replica sharing the store, until it is
// forgotten; a later loss replaces an earlier one, and forgetting an earlier one keeps a later.
func TestTheLastRedisDataLossIsKeptUntilForgotten(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		j := NewJournal(db)
		if at, err := j.LastLoss(ctx); err != nil || !at.IsZero() {
			t.Fatalf("a fresh store: last loss %v, %v; want none", at, err)
		}
		first, second := time.UnixMilli(1_700_000_000_000), time.UnixMilli(1_700_000_060_000)
		steps := []struct {
			name string
			do   func() error
			want time.Time
		}{
			{"a loss is recorded", func() error { return j.NoteLoss(ctx, first) }, first},
			{"a later loss replaces it", func() error { return j.NoteLoss(ctx, second) }, second},
			{"an earlier one noted late does not", func() error { return j.NoteLoss(ctx, first) }, second},
			{"forgetting the earlier keeps the later", func() error { return j.ForgetLoss(ctx, first) }, second},
			{"forgetting the later forgets it", func() error { return j.ForgetLoss(ctx, second) }, time.Time{}},
		}
		for _, s := range steps {
			if err := s.do(); err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			if at, err := NewJournal(db).LastLoss(ctx); err != nil || !at.Equal(s.want) {
				t.Fatalf("%s: last loss %v, %v; want %v", s.name, at, err, s.want)
			}
		}
	})
}
