package storage

import (
	"context"
	"testing"
)

func TestTheRedisGenerationSeenIsKeptAcrossReopens(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	db, err := Open(ctx, Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	r := NewRegistry(db, nil)
	if gen, err := r.RedisGeneration(ctx); err != nil || gen != 0 {
		t.Fatalf("a fresh store: generation %d, %v; want 0", gen, err)
	}
	for _, g := range []int64{42, 1 << 61} {
		if err := r.SetRedisGeneration(ctx, g); err != nil {
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
	if gen, err := r.RedisGeneration(ctx); err != nil || gen != 1<<61 {
		t.Fatalf("after reopening: generation %d, %v; want the last one recorded", gen, err)
	}
}
