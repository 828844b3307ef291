package storage

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"wagate/gateway/laravel"
)

// Record is one session in the registry.
type Record struct {
	// SessionID is the Laravel-side session id.
	SessionID string
	// DeviceJID is the WhatsApp device the session paired ("" when unpaired).
	DeviceJID string
	// Status is the last status reported for the session.
	Status laravel.Status
	// CreatedAt is when the session was first started.
	CreatedAt time.Time
	// UpdatedAt is when the record last changed.
	UpdatedAt time.Time
	// Parked says why the gateway stopped reconnecting this paired session ("" when it may
	// reconnect): another client took over its device (ParkedStreamReplaced) or WhatsApp refused the
	// connection for good (ParkedConnectFailed). A restart keeps that decision; only an explicit
	// start (POST /sessions) reconnects a parked session.
	Parked string
	// Epoch is the writer's version epoch (cluster mode: its shard's epoch, the fencing token).
	// A write with a lower epoch than the stored row's is refused: a replica that lost the
	// session's shard cannot overwrite the newer holder's record.
	Epoch int64
}

// Reasons a paired session is parked (Record.Parked).
const (
	ParkedStreamReplaced = "stream_replaced"
	ParkedConnectFailed  = "connect_failed"
)

// Registry stores session records. Writes are write-behind: Put returns at once and one
// background writer stores everything pending in one transaction, so a burst of status changes
// (a thousand sessions reconnecting) costs a handful of transactions, not a thousand.
type Registry struct {
	db  *DB
	log *slog.Logger

	mu      sync.Mutex
	pending map[string]Record

	writeMu sync.Mutex // serialises batch writes (background writer and Flush)
	// onFenced, when set, is called for every write refused because the stored row carries a
	// newer epoch (SetOnFencedWrite).
	onFenced atomic.Pointer[func(Record)]
	wake     chan struct{}
	stop     chan struct{}
	done     chan struct{}
}

// NewRegistry returns a registry on db and starts its writer. Close stops it.
func NewRegistry(db *DB, log *slog.Logger) *Registry {
	if log == nil {
		log = slog.Default()
	}
	r := &Registry{
		db:      db,
		log:     log,
		pending: make(map[string]Record),
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go r.writer()
	return r
}

// SetOnFencedWrite sets f to be called (on the writer's goroutine) for every record not written
// because the stored row carries a newer epoch: a fenced (zombie) write.
func (r *Registry) SetOnFencedWrite(f func(Record)) { r.onFenced.Store(&f) }

// Load returns every stored record, ordered by session id.
func (r *Registry) Load(ctx context.Context) ([]Record, error) {
	rows, err := r.db.SQL.QueryContext(ctx,
		`SELECT session_id, device_jid, status, created_at, updated_at, parked, epoch FROM wagate_sessions ORDER BY session_id`)
	if err != nil {
		return nil, fmt.Errorf("storage: load sessions: %w", err)
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		var rec Record
		var status string
		var created, updated int64
		if err := rows.Scan(&rec.SessionID, &rec.DeviceJID, &status, &created, &updated, &rec.Parked, &rec.Epoch); err != nil {
			return nil, fmt.Errorf("storage: scan session: %w", err)
		}
		rec.Status = laravel.Status(status)
		rec.CreatedAt = time.UnixMilli(created)
		rec.UpdatedAt = time.UnixMilli(updated)
		out = append(out, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: load sessions: %w", err)
	}
	return out, nil
}

// Put schedules rec to be stored; a later Put of the same session replaces it if not yet written.
func (r *Registry) Put(rec Record) {
	r.mu.Lock()
	r.pending[rec.SessionID] = rec
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Flush stores everything Put so far before returning.
func (r *Registry) Flush(ctx context.Context) error {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	return r.writePending(ctx)
}

// Close flushes and stops the writer; ctx bounds the final flush.
func (r *Registry) Close(ctx context.Context) error {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	<-r.done
	return r.Flush(ctx)
}

func (r *Registry) writer() {
	defer close(r.done)
	backoff := time.Duration(0)
	for {
		select {
		case <-r.stop:
			return
		case <-r.wake:
		}
		if backoff > 0 {
			select {
			case <-r.stop:
				return
			case <-time.After(backoff):
			}
		}
		r.writeMu.Lock()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := r.writePending(ctx)
		cancel()
		r.writeMu.Unlock()
		if err != nil {
			backoff = min(max(2*backoff, 100*time.Millisecond), 5*time.Second)
			r.log.Error("session registry write failed; will retry", "err", err, "retry_in", backoff)
			select {
			case r.wake <- struct{}{}:
			default:
			}
		} else {
			backoff = 0
		}
	}
}

// writePending stores and clears the pending set in one transaction. On failure the records go
// back to pending unless a newer one arrived meanwhile. Callers hold writeMu.
func (r *Registry) writePending(ctx context.Context) error {
	r.mu.Lock()
	if len(r.pending) == 0 {
		r.mu.Unlock()
		return nil
	}
	batch := make([]Record, 0, len(r.pending))
	for _, rec := range r.pending {
		batch = append(batch, rec)
	}
	clear(r.pending)
	r.mu.Unlock()
	// A stable order keeps Postgres row locks in one order across concurrent writers.
	sort.Slice(batch, func(i, j int) bool { return batch[i].SessionID < batch[j].SessionID })

	err := r.upsert(ctx, batch)
	if err != nil {
		r.mu.Lock()
		for _, rec := range batch {
			if _, newer := r.pending[rec.SessionID]; !newer {
				r.pending[rec.SessionID] = rec
			}
		}
		r.mu.Unlock()
	}
	return err
}

func (r *Registry) upsert(ctx context.Context, batch []Record) error {
	tx, err := r.db.SQL.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("storage: begin session write: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	// The conditional upsert is the registry's fence: a row written at a newer epoch stays.
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO wagate_sessions (session_id, device_jid, status, created_at, updated_at, parked, epoch)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (session_id) DO UPDATE SET device_jid = excluded.device_jid, status = excluded.status, updated_at = excluded.updated_at,
			parked = excluded.parked, epoch = excluded.epoch
		WHERE wagate_sessions.epoch <= excluded.epoch`)
	if err != nil {
		return fmt.Errorf("storage: prepare session write: %w", err)
	}
	defer stmt.Close()
	var fenced []Record
	for _, rec := range batch {
		created := rec.CreatedAt
		if created.IsZero() {
			created = rec.UpdatedAt
		}
		res, err := stmt.ExecContext(ctx, rec.SessionID, rec.DeviceJID, string(rec.Status), created.UnixMilli(), rec.UpdatedAt.UnixMilli(), rec.Parked, rec.Epoch)
		if err != nil {
			return fmt.Errorf("storage: write session %s: %w", rec.SessionID, err)
		}
		if n, err := res.RowsAffected(); err == nil && n == 0 {
			fenced = append(fenced, rec)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("storage: commit session write: %w", err)
	}
	for _, rec := range fenced {
		r.log.Warn("session registry: write refused, the stored record has a newer epoch (another replica holds the session)",
			"session_id", rec.SessionID, "epoch", rec.Epoch)
		if f := r.onFenced.Load(); f != nil && *f != nil {
			(*f)(rec)
		}
	}
	return nil
}

// NextEpoch returns a new version epoch, strictly greater than every epoch returned before by
// this database and at least floor, and stores it. The session layer builds event versions as
// epoch*1e6 + a per-session counter, so one write per start keeps versions monotonic across
// restarts; passing the current Unix time as floor keeps them monotonic even across a wiped
// data dir (given a sane clock).
func (r *Registry) NextEpoch(ctx context.Context, floor int64) (int64, error) {
	var next int64
	err := r.db.SQL.QueryRowContext(ctx, `INSERT INTO wagate_meta (name, value) VALUES ('epoch', $1)
		ON CONFLICT (name) DO UPDATE SET value = CASE WHEN wagate_meta.value + 1 > excluded.value
			THEN wagate_meta.value + 1 ELSE excluded.value END
		RETURNING value`, max(floor, 1)).Scan(&next)
	if err != nil {
		return 0, fmt.Errorf("storage: next epoch: %w", err)
	}
	return next, nil
}

// MarkCleanStop records that this run stopped cleanly: every status the registry holds was handed
// to delivery before the stop. Call it last, after the session layer and the delivery closed
// without error.
func (r *Registry) MarkCleanStop(ctx context.Context) error {
	_, err := r.db.SQL.ExecContext(ctx, `INSERT INTO wagate_meta (name, value) VALUES ('clean_stop', 1)
		ON CONFLICT (name) DO UPDATE SET value = 1`)
	if err != nil {
		return fmt.Errorf("storage: mark clean stop: %w", err)
	}
	return nil
}

// RedisSeen is what a gateway records of the Redis data it works with, so that its next start can
// tell whether Redis lost data meanwhile: the outbox marker's Generation (a different one: the data
// was lost) and the Run of the Redis server (outbox.Outbox.Run, derived from its run_id; a
// different one: the server restarted, and a restart on AOF with appendfsync everysec may lose its
// last second of writes while the marker survives). Zero: not recorded (a first start, or a
// store from before the run was recorded) or, for Run, a server that does not tell (miniredis).
type RedisSeen struct {
	Generation, Run int64
}

// RedisSeen returns what was last recorded of the Redis data (zero values when nothing was).
func (r *Registry) RedisSeen(ctx context.Context) (RedisSeen, error) {
	rows, err := r.db.SQL.QueryContext(ctx, `SELECT name, value FROM wagate_meta WHERE name IN ('redis_generation', 'redis_run')`)
	if err != nil {
		return RedisSeen{}, fmt.Errorf("storage: read the redis data seen: %w", err)
	}
	defer rows.Close()
	var seen RedisSeen
	for rows.Next() {
		var name string
		var v int64
		if err := rows.Scan(&name, &v); err != nil {
			return RedisSeen{}, fmt.Errorf("storage: read the redis data seen: %w", err)
		}
		if name == "redis_run" {
			seen.Run = v
		} else {
			seen.Generation = v
		}
	}
	if err := rows.Err(); err != nil {
		return RedisSeen{}, fmt.Errorf("storage: read the redis data seen: %w", err)
	}
	return seen, nil
}

// SetRedisSeen records the Redis data this gateway works with (both values in one statement).
func (r *Registry) SetRedisSeen(ctx context.Context, seen RedisSeen) error {
	_, err := r.db.SQL.ExecContext(ctx, `INSERT INTO wagate_meta (name, value) VALUES ('redis_generation', $1), ('redis_run', $2)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, seen.Generation, seen.Run)
	if err != nil {
		return fmt.Errorf("storage: record the redis data seen: %w", err)
	}
	return nil
}

// TakeCleanStop reports whether the previous run stopped cleanly (MarkCleanStop) and clears the
// mark, so that a crash of this run is seen by the next one. False for a fresh store: with no
// previous run there is nothing to doubt either.
func (r *Registry) TakeCleanStop(ctx context.Context) (bool, error) {
	res, err := r.db.SQL.ExecContext(ctx, `DELETE FROM wagate_meta WHERE name = 'clean_stop'`)
	if err != nil {
		return false, fmt.Errorf("storage: read clean stop: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("storage: read clean stop: %w", err)
	}
	return n > 0, nil
}
