package storage

import (
	"container/list"
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync"
)

// SQLite statements are parsed once per connection, not once per call (issue 18).
//
// whatsmeow's store and the gateway's journal call db.ExecContext and db.QueryContext with SQL
// text, never prepared statements, and modernc.org/sqlite answers each such call by compiling the
// text (sqlite3_prepare_v2: tokenizer, parser, code generator) and finalizing the program after
// one run. Every customer's message decrypted costs several of those (its Signal session, the
// identity, the message secret, the dedup row), every pairing fifty prekey INSERTs: in CPU
// profiles of the gateway under seed-batch-1000 and seed-batch-100 the compiling alone was 4-5%
// of the gateway's CPU (modernc.org/sqlite/lib._sqlite3RunParser and below).
//
// stmtCacheConn keeps each connection's compiled statements by SQL text, up to stmtCacheSize,
// and runs a call with the same text on the kept statement (bound anew, reset after the run, as
// modernc does for a statement prepared by hand). A statement still in use by open rows is not
// shared: a second use of the same text meanwhile (a nested query in a transaction) compiles a
// statement of its own, as before. A statement whose run failed is finalized and compiled again
// by the next call, so no state of a failed run (an interrupted step, a constraint violation) is
// carried over. SQLite recompiles a kept statement by itself when the schema changes (prepare_v2).
// Postgres is not wrapped: pgx keeps its own statement cache.

// stmtCacheSize bounds the statements kept per connection; the least recently used one beyond it
// is finalized. whatsmeow's store and the gateway's tables use about a hundred distinct texts.
const stmtCacheSize = 256

// stmtCacheConnector opens connections through base and wraps each in a stmtCacheConn.
type stmtCacheConnector struct {
	driver.Connector
	size int
}

// Connect implements driver.Connector.
func (c stmtCacheConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	b, ok := conn.(baseConn)
	if !ok {
		_ = conn.Close()
		return nil, fmt.Errorf("storage: the SQLite driver's connection (%T) lacks an interface the statement cache forwards", conn)
	}
	return &stmtCacheConn{baseConn: b, size: c.size, stmts: make(map[string]*cachedStmt)}, nil
}

// baseConn is what modernc.org/sqlite's connections implement and the wrapper forwards (its
// NewConnector documents the list): hiding any of them would make database/sql fall back to
// context-free calls.
type baseConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

// stmtStatement is a compiled statement that runs with a context (modernc's stmt).
type stmtStatement interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

// stmtCacheConn is one connection with its kept statements. database/sql uses a connection from
// one goroutine at a time, but rows are closed from its context watcher too: mu guards the map.
type stmtCacheConn struct {
	baseConn
	size int

	mu    sync.Mutex
	stmts map[string]*cachedStmt
	lru   list.List // of *cachedStmt, most recently used first
	// prepared counts the statements compiled for the cache (tests).
	prepared int
}

// cachedStmt is a kept statement; busy while a run or its rows use it.
type cachedStmt struct {
	query string
	stmt  stmtStatement
	busy  bool
	elem  *list.Element
}

// Unwrap returns the driver's connection (modernc's Limit and similar helpers look through it).
func (c *stmtCacheConn) Unwrap() driver.Conn { return c.baseConn }

// take returns the kept statement for query, marked busy, compiling and keeping it when there is
// none; nil (and no error) when the kept one is busy or cannot be kept: the caller then runs the
// query the driver's own way.
func (c *stmtCacheConn) take(ctx context.Context, query string) (*cachedStmt, error) {
	c.mu.Lock()
	if s, ok := c.stmts[query]; ok {
		if s.busy {
			c.mu.Unlock()
			return nil, nil
		}
		s.busy = true
		c.lru.MoveToFront(s.elem)
		c.mu.Unlock()
		return s, nil
	}
	c.mu.Unlock()
	ds, err := c.baseConn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	st, ok := ds.(stmtStatement)
	if !ok {
		_ = ds.Close()
		return nil, nil
	}
	s := &cachedStmt{query: query, stmt: st, busy: true}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.prepared++
	if _, ok := c.stmts[query]; ok {
		return s, nil // kept meanwhile by another use: this one is finalized after its run
	}
	for c.lru.Len() >= c.size {
		if !c.evictOldestIdle() {
			return s, nil // every kept statement is in use: this one is finalized after its run
		}
	}
	s.elem = c.lru.PushFront(s)
	c.stmts[query] = s
	return s, nil
}

// evictOldestIdle finalizes the least recently used statement not in use; false when all are.
// Call with mu held.
func (c *stmtCacheConn) evictOldestIdle() bool {
	for e := c.lru.Back(); e != nil; e = e.Prev() {
		s := e.Value.(*cachedStmt)
		if !s.busy {
			c.drop(s)
			_ = s.stmt.Close()
			return true
		}
	}
	return false
}

// drop forgets s. Call with mu held.
func (c *stmtCacheConn) drop(s *cachedStmt) {
	if s.elem != nil {
		c.lru.Remove(s.elem)
		s.elem = nil
		delete(c.stmts, s.query)
	}
}

// release ends a use of s: kept for the next call, or finalized when the run failed or s was
// never kept (the cache was full of statements in use).
func (c *stmtCacheConn) release(s *cachedStmt, runErr error) {
	c.mu.Lock()
	s.busy = false
	finalize := s.elem == nil
	if runErr != nil && s.elem != nil {
		c.drop(s)
		finalize = true
	}
	c.mu.Unlock()
	if finalize {
		_ = s.stmt.Close()
	}
}

// ExecContext runs query on its kept statement.
func (c *stmtCacheConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	s, err := c.take(ctx, query)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.baseConn.ExecContext(ctx, query, args)
	}
	res, err := s.stmt.ExecContext(ctx, args)
	c.release(s, err)
	return res, err
}

// QueryContext runs query on its kept statement, which stays in use until the rows are closed.
func (c *stmtCacheConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	s, err := c.take(ctx, query)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.baseConn.QueryContext(ctx, query, args)
	}
	rows, err := s.stmt.QueryContext(ctx, args)
	if err != nil {
		c.release(s, err)
		return nil, err
	}
	release := func(err error) { c.release(s, err) }
	if rr, ok := rows.(richRows); ok {
		return &cachedRichRows{richRows: rr, release: release}, nil
	}
	return &cachedRows{Rows: rows, release: release}, nil
}

// Close finalizes the kept statements, then closes the connection.
func (c *stmtCacheConn) Close() error {
	c.mu.Lock()
	var errs []error
	for _, s := range c.stmts {
		if err := s.stmt.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	c.stmts = map[string]*cachedStmt{}
	c.lru.Init()
	c.mu.Unlock()
	errs = append(errs, c.baseConn.Close())
	return errors.Join(errs...)
}

// richRows is what modernc's rows implement besides driver.Rows: database/sql's ColumnTypes
// reads them.
type richRows interface {
	driver.Rows
	driver.RowsColumnTypeDatabaseTypeName
	driver.RowsColumnTypeLength
	driver.RowsColumnTypeNullable
	driver.RowsColumnTypePrecisionScale
	driver.RowsColumnTypeScanType
}

// cachedRows releases its statement when closed.
type cachedRows struct {
	driver.Rows
	release func(error)
	closed  bool
}

// Close closes the rows (resetting the statement) and releases it.
func (r *cachedRows) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	err := r.Rows.Close()
	r.release(err)
	return err
}

// cachedRichRows is cachedRows with the column type methods of richRows.
type cachedRichRows struct {
	richRows
	release func(error)
	closed  bool
}

// Close closes the rows (resetting the statement) and releases it.
func (r *cachedRichRows) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	err := r.richRows.Close()
	r.release(err)
	return err
}
