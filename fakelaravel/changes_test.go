package fakelaravel

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"wagate/gateway/laravel"
)

func (h *harness) admin() *AdminClient {
	return NewAdminClient(h.ts.URL, testToken, h.ts.Client())
}

func ids(ss []SessionState) []string {
	out := []string{}
	for _, s := range ss {
		out = append(out, s.SessionID)
	}
	return out
}

// The cursor's semantics, step by step on one fakelaravel: each step writes (or not), then reads
// from a cursor (the previous answer's, 0, one from before a reset, one the database never gave)
// and names the sessions and the kind of answer it must get.
func TestStateSinceAnswersTheSessionsChangedAfterTheCursor(t *testing.T) {
	h := newHarness(t, nil)
	ac := h.admin()
	ctx := t.Context()
	var last, beforeReset int64
	from := map[string]func() int64{
		"last":         func() int64 { return last },
		"zero":         func() int64 { return 0 },
		"before reset": func() int64 { return beforeReset },
		"unknown":      func() int64 { return last + 1000 }, // another database's cursor
	}
	steps := []struct {
		name     string
		write    func()
		since    string
		wantFull bool
		wantIDs  []string
	}{
		{"an empty database is an empty full snapshot", nil, "zero", true, []string{}},
		{"a new session is a change",
			func() { h.postStatuses("k1", st("a", laravel.StatusPending, 1), st("b", laravel.StatusPending, 1)) },
			"last", false, []string{"a", "b"}},
		{"nothing written: nothing changed", nil, "last", false, []string{}},
		{"an applied newer version is a change of that row only",
			func() { h.postStatuses("k2", st("a", laravel.StatusConnected, 2)) },
			"last", false, []string{"a"}},
		{"a stale version changes nothing",
			func() { h.postStatuses("k3", st("b", laravel.StatusConnected, 1)) },
			"last", false, []string{}},
		{"a QR, a legacy write and the enabled flag are changes",
			func() {
				h.do(http.MethodPost, laravel.PathQRBatch, qrBatchBody(qr("c", "2@code", 1)), map[string]string{laravel.HeaderIdempotencyKey: "k4"})
				h.do(http.MethodPost, laravel.PathStatus, `{"session_id":"d","estado_qr":"pending"}`, nil)
				if err := ac.SetSession(ctx, "b", false); err != nil {
					t.Fatal(err)
				}
			},
			"last", false, []string{"b", "c", "d"}},
		{"a replayed batch applies nothing and changes nothing",
			func() { h.postStatuses("k2", st("a", laravel.StatusConnected, 2)) },
			"last", false, []string{}},
		{"cursor 0 is every session", nil, "zero", true, []string{"a", "b", "c", "d"}},
		{"a cursor from before a reset is a full snapshot: the deletions show",
			func() {
				beforeReset = last
				if err := ac.Reset(ctx); err != nil {
					t.Fatal(err)
				}
				h.postStatuses("k5", st("e", laravel.StatusPending, 1))
			},
			"before reset", true, []string{"e"}},
		{"after the reset the feed goes on", func() { h.postStatuses("k6", st("e", laravel.StatusConnected, 2)) },
			"last", false, []string{"e"}},
		{"a cursor the database never gave is a full snapshot", nil, "unknown", true, []string{"e"}},
	}
	for _, s := range steps {
		if s.write != nil {
			s.write()
		}
		since := from[s.since]()
		got, err := ac.GetStateSince(ctx, since)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got.Full != s.wantFull || !slices.Equal(ids(got.Sessions), s.wantIDs) {
			t.Fatalf("%s: since %d answered full=%v %v, want full=%v %v", s.name, since, got.Full, ids(got.Sessions), s.wantFull, s.wantIDs)
		}
		if got.Cursor < last && s.since != "before reset" {
			t.Fatalf("%s: the cursor went back from %d to %d", s.name, last, got.Cursor)
		}
		last = got.Cursor
	}
	// The changed row carries its current columns, as the full state does.
	full, err := ac.GetState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := ac.GetStateSince(ctx, 0)
	if !slices.Equal(got.Sessions, full.Sessions) {
		t.Fatalf("since=0 %+v, full state %+v", got.Sessions, full.Sessions)
	}
}

// The plain /_fake/state keeps its shape (only "sessions"); a since that is not a cursor is 422.
func TestStateKeepsItsShapeAndRefusesABadCursor(t *testing.T) {
	h := newHarness(t, nil)
	h.postStatuses("k1", st("a", laravel.StatusPending, 1))
	r := h.do(http.MethodGet, PathState, "", nil)
	var shape map[string]json.RawMessage
	r.json(t, &shape)
	if r.status != http.StatusOK || !slices.Equal(slices.Sorted(maps.Keys(shape)), []string{"sessions"}) {
		t.Fatalf("GET %s: %d %s", PathState, r.status, r.body)
	}
	for _, bad := range []string{"-1", "x", "", "1.5"} {
		r := h.do(http.MethodGet, PathState+"?since="+bad, "", nil)
		if r.status != http.StatusUnprocessableEntity || !strings.Contains(string(r.body), "since") {
			t.Fatalf("since=%q: %d %s", bad, r.status, r.body)
		}
	}
}

// A front of a real Laravel app has no change feed: every answer is a full snapshot with cursor
// 0, so a reader falls back to full reads.
func TestFrontAnswersFullSnapshots(t *testing.T) {
	front, app := newFront(t, nil)
	app.postStatuses("k1", st("a", laravel.StatusPending, 1))
	ac := NewAdminClient(front.ts.URL, "admin-token", front.ts.Client())
	for _, since := range []int64{0, 1, 5} {
		got, err := ac.GetStateSince(t.Context(), since)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Full || got.Cursor != 0 || !slices.Equal(ids(got.Sessions), []string{"a"}) {
			t.Fatalf("since %d: %+v", since, got)
		}
	}
}

// No change is lost between two reads while writers write: a reader that applies each answer to
// its copy holds, after every read, at least every version acknowledged to a writer before the
// read began, and after the writers stop its copy equals the full state. Run with -race.
func TestStateSinceLosesNoChangeUnderConcurrentWrites(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Capacity = CapacityModel{Workers: 8, Backlog: 256} })
	ac := h.admin()
	ctx := t.Context()
	const writers, sessions, rounds = 4, 25, 30
	var acked sync.Map // session id -> *atomic.Int64, the newest acknowledged status version
	for i := range writers * sessions {
		acked.Store(fmt.Sprintf("s%03d", i), new(atomic.Int64))
	}
	var wg sync.WaitGroup
	stop, quit := make(chan struct{}), make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			for round := int64(1); round <= rounds; round++ {
				select {
				case <-quit: // the reader failed: stop writing before it reports
					return
				default:
				}
				items := make([]laravel.StatusItem, 0, sessions)
				for i := range sessions {
					if (i+int(round))%3 == 0 {
						continue // not every session changes every round
					}
					items = append(items, st(fmt.Sprintf("s%03d", w*sessions+i), laravel.Statuses[round%int64(len(laravel.Statuses))], round))
				}
				r, res := h.postStatuses(fmt.Sprintf("w%d-r%d", w, round), items...)
				if r.status != http.StatusOK || res.Updated != len(items) {
					t.Errorf("writer %d round %d: %d %s", w, round, r.status, r.body)
					return
				}
				for _, it := range items {
					v, _ := acked.Load(it.SessionID)
					v.(*atomic.Int64).Store(it.Version)
				}
			}
		})
	}
	go func() { wg.Wait(); close(stop) }()

	copyOf := map[string]SessionState{}
	var cursor int64
	reads := 0
	read := func() error {
		before := map[string]int64{}
		acked.Range(func(k, v any) bool { before[k.(string)] = v.(*atomic.Int64).Load(); return true })
		got, err := ac.GetStateSince(ctx, cursor)
		if err != nil {
			return err
		}
		if got.Full {
			clear(copyOf)
		}
		for _, s := range got.Sessions {
			copyOf[s.SessionID] = s
		}
		cursor = got.Cursor
		reads++
		for id, v := range before {
			if v > 0 && copyOf[id].StatusVersion < v {
				return fmt.Errorf("read %d (cursor %d): %s at version %d, but %d was acknowledged before the read", reads, cursor, id, copyOf[id].StatusVersion, v)
			}
		}
		return nil
	}
	for done := false; !done; {
		select {
		case <-stop:
			done = true
		default:
		}
		if err := read(); err != nil {
			close(quit)
			<-stop
			t.Fatal(err)
		}
	}
	if err := read(); err != nil {
		t.Fatal(err)
	}
	full, err := ac.GetState(context.WithoutCancel(ctx))
	if err != nil {
		t.Fatal(err)
	}
	if len(full.Sessions) != len(copyOf) {
		t.Fatalf("the copy holds %d sessions, Laravel %d", len(copyOf), len(full.Sessions))
	}
	for _, s := range full.Sessions {
		if copyOf[s.SessionID] != s {
			t.Fatalf("after %d reads the copy has %+v, Laravel %+v", reads, copyOf[s.SessionID], s)
		}
	}
	if reads < 3 {
		t.Fatalf("only %d reads overlapped the writes", reads)
	}
}
