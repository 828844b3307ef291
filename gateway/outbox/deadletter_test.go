package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"wagate/gateway/event"
	"wagate/internal/redistest"
)

// faultHook makes chosen commands fail, or runs a function before them, on one client.
type faultHook struct {
	failXDelOnDead atomic.Bool // XDEL on the dead-letter stream fails
	beforeXDel     func()      // runs before each XDEL on the dead-letter stream, when set
}

func (h *faultHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

func (h *faultHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if args := cmd.Args(); cmd.Name() == "xdel" && len(args) > 1 && args[1] == DefaultDeadLetterStream {
			if h.beforeXDel != nil {
				h.beforeXDel()
			}
			if h.failXDelOnDead.Load() {
				err := errors.New("injected: connection lost before XDEL")
				cmd.SetErr(err)
				return err
			}
		}
		return next(ctx, cmd)
	}
}

func (h *faultHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// deadLetterRig is an outbox whose client carries a faultHook.
type deadLetterRig struct {
	o    *Outbox
	rdb  *redis.Client
	hook *faultHook
}

func newDeadLetterRig(t *testing.T, b *redistest.Backend, cfg Config) *deadLetterRig {
	t.Helper()
	rdb := b.Client(t)
	hook := &faultHook{}
	rdb.AddHook(hook)
	cfg.Logger = slog.New(slog.DiscardHandler)
	if cfg.Consumer == "" {
		cfg.Consumer = "gw-a"
	}
	o, err := New(context.Background(), rdb, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &deadLetterRig{o: o, rdb: rdb, hook: hook}
}

// deadLetter appends evs, reads them and dead-letters them with reason.
func (r *deadLetterRig) deadLetter(t *testing.T, reason string, evs ...event.Event) {
	t.Helper()
	ctx := context.Background()
	for _, ev := range evs {
		if _, err := r.o.Append(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := r.o.ReadNew(ctx, int64(len(evs)))
	if err != nil || len(entries) != len(evs) {
		t.Fatalf("read %d of %d: %v", len(entries), len(evs), err)
	}
	if err := r.o.DeadLetter(ctx, entries, reason); err != nil {
		t.Fatal(err)
	}
}

// all lists every dead letter through the paginated API.
func (r *deadLetterRig) all(t *testing.T) []DeadLetter {
	t.Helper()
	var out []DeadLetter
	cursor := ""
	for range 1000 {
		page, next, err := r.o.ListDeadLetters(context.Background(), cursor, 7)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page...)
		if next == "" {
			return out
		}
		cursor = next
	}
	t.Fatal("pagination did not end")
	return nil
}

// outboxEvents reads every undelivered event in the outbox (as a new consumer would).
func (r *deadLetterRig) outboxEvents(t *testing.T) []event.Event {
	t.Helper()
	entries, err := r.o.ReadNew(context.Background(), 10_000)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]event.Event, len(entries))
	for i, e := range entries {
		out[i] = e.Event
	}
	return out
}

func TestDeadLettersAreListedOldestFirstInPages(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		r := newDeadLetterRig(t, b, Config{})
		ctx := context.Background()
		var want []event.Event
		for v := int64(1); v <= 5; v++ {
			ev := testEvent(fmt.Sprintf("s%d", v), v, event.KindStatus, "connected")
			want = append(want, ev)
			r.deadLetter(t, fmt.Sprintf("laravel refused item %d", v), ev)
		}
		var pages [][]DeadLetter
		cursor := ""
		for {
			page, next, err := r.o.ListDeadLetters(ctx, cursor, 2)
			if err != nil {
				t.Fatal(err)
			}
			pages = append(pages, page)
			if next == "" {
				break
			}
			if next != page[len(page)-1].ID {
				t.Fatalf("next cursor %q is not the page's last id %q", next, page[len(page)-1].ID)
			}
			cursor = next
		}
		if len(pages) != 3 || len(pages[0]) != 2 || len(pages[1]) != 2 || len(pages[2]) != 1 {
			t.Fatalf("pages of sizes %d/%d/%d..., want 2/2/1", len(pages[0]), len(pages[1]), len(pages[len(pages)-1]))
		}
		i := 0
		for _, page := range pages {
			for _, dl := range page {
				if dl.Event != want[i] {
					t.Fatalf("dead letter %d holds %+v, want %+v", i, dl.Event, want[i])
				}
				if dl.Reason != fmt.Sprintf("laravel refused item %d", i+1) || dl.OutboxID == "" || dl.At.IsZero() || time.Since(dl.At) > time.Minute {
					t.Fatalf("dead letter %d: reason %q, outbox id %q, at %v", i, dl.Reason, dl.OutboxID, dl.At)
				}
				i++
			}
		}
		last := pages[2][0].ID
		if page, next, err := r.o.ListDeadLetters(ctx, last, 2); err != nil || len(page) != 0 || next != "" {
			t.Fatalf("after the last dead letter: %d entries, next %q, %v", len(page), next, err)
		}
	})
}

func TestDeadLetterCursorsAreValidated(t *testing.T) {
	r := newDeadLetterRig(t, redistest.Mini(t), Config{})
	for _, bad := range []string{"x", "1", "-1-0", "1-", "1-0 ", "99999999999999999999999-0", "1-0\n", "+", "-"} {
		if _, _, err := r.o.ListDeadLetters(context.Background(), bad, 10); !errors.Is(err, ErrInvalidCursor) {
			t.Errorf("cursor %q: %v, want ErrInvalidCursor", bad, err)
		}
		if ValidCursor(bad) {
			t.Errorf("ValidCursor(%q) = true", bad)
		}
	}
	for _, good := range []string{"", "0-0", "1700000000000-3", "18446744073709551615-18446744073709551615"} {
		if !ValidCursor(good) {
			t.Errorf("ValidCursor(%q) = false", good)
		}
	}
	// The largest id has nothing after it.
	if page, next, err := r.o.ListDeadLetters(context.Background(), "18446744073709551615-18446744073709551615", 10); err != nil || len(page) != 0 || next != "" {
		t.Fatalf("after the largest id: %d, %q, %v", len(page), next, err)
	}
}

func TestRedriveReappendsTheOriginalEventsAndRemovesTheirDeadLetters(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		r := newDeadLetterRig(t, b, Config{})
		in := []event.Event{
			testEvent("s1", 7, event.KindStatus, "logged_out"),
			testEvent("s2", 3, event.KindQR, "2@qr-code"),
		}
		r.deadLetter(t, "item refused: unknown session", in...)
		res, err := r.o.RedriveDeadLetters(context.Background(), RedriveFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if res != (RedriveResult{Matched: 2, Redriven: 2}) {
			t.Fatalf("result %+v, want 2 matched and re-driven", res)
		}
		got := r.outboxEvents(t)
		if len(got) != 2 || got[0] != in[0] || got[1] != in[1] {
			t.Fatalf("outbox holds %+v, want the original events (same id, version, priority, time) %+v", got, in)
		}
		if left := r.all(t); len(left) != 0 {
			t.Fatalf("%d dead letters left after the re-drive", len(left))
		}
		// Nothing left: a second re-drive does nothing.
		if res, err := r.o.RedriveDeadLetters(context.Background(), RedriveFilter{}); err != nil || res != (RedriveResult{}) {
			t.Fatalf("second re-drive: %+v, %v", res, err)
		}
	})
}

func TestRedriveSelectsBySessionAndReason(t *testing.T) {
	tests := []struct {
		name     string
		filter   RedriveFilter
		redriven []string // event ids re-appended, oldest first
	}{
		{"everything", RedriveFilter{}, []string{"a-status-1", "b-status-2", "a-status-3"}},
		{"one session", RedriveFilter{SessionID: "a"}, []string{"a-status-1", "a-status-3"}},
		{"reason, any case", RedriveFilter{ReasonContains: "UNKNOWN session"}, []string{"a-status-1", "b-status-2"}},
		{"session and reason", RedriveFilter{SessionID: "a", ReasonContains: "unknown"}, []string{"a-status-1"}},
		{"no match", RedriveFilter{SessionID: "zzz"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newDeadLetterRig(t, redistest.Mini(t), Config{})
			r.deadLetter(t, "item refused: unknown session", testEvent("a", 1, event.KindStatus, "connected"), testEvent("b", 2, event.KindStatus, "connected"))
			r.deadLetter(t, "item refused alone after a 422: invalid", testEvent("a", 3, event.KindStatus, "connected"))
			res, err := r.o.RedriveDeadLetters(context.Background(), tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, ev := range r.outboxEvents(t) {
				ids = append(ids, ev.ID)
			}
			if fmt.Sprint(ids) != fmt.Sprint(tc.redriven) || res.Redriven != len(tc.redriven) || res.Matched != len(tc.redriven) {
				t.Fatalf("re-drove %v (%+v), want %v", ids, res, tc.redriven)
			}
			if left := r.all(t); len(left) != 3-len(tc.redriven) {
				t.Fatalf("%d dead letters left, want %d", len(left), 3-len(tc.redriven))
			}
		})
	}
}

func TestRedriveFiltersAreValidated(t *testing.T) {
	for _, f := range []RedriveFilter{{Limit: -1}, {Limit: MaxRedrive + 1}, {ReasonContains: string(make([]byte, 257))}} {
		if err := f.Validate(); err == nil {
			t.Errorf("filter %+v accepted", f)
		}
	}
}

func TestRedriveStopsAtItsLimitAndTheNextCallContinues(t *testing.T) {
	r := newDeadLetterRig(t, redistest.Mini(t), Config{})
	for v := int64(1); v <= 5; v++ {
		r.deadLetter(t, "refused", testEvent("s", v, event.KindStatus, "connected"))
	}
	res, err := r.o.RedriveDeadLetters(context.Background(), RedriveFilter{Limit: 2})
	if err != nil || res != (RedriveResult{Matched: 2, Redriven: 2, More: true}) {
		t.Fatalf("first call: %+v, %v; want 2 re-driven and more", res, err)
	}
	res, err = r.o.RedriveDeadLetters(context.Background(), RedriveFilter{Limit: 3})
	if err != nil || res != (RedriveResult{Matched: 3, Redriven: 3}) {
		t.Fatalf("second call: %+v, %v; want the other 3 and no more", res, err)
	}
	var versions []int64
	for _, ev := range r.outboxEvents(t) {
		versions = append(versions, ev.Version)
	}
	if fmt.Sprint(versions) != "[1 2 3 4 5]" {
		t.Fatalf("re-driven versions %v, want [1 2 3 4 5]", versions)
	}
}

// A crash (here: Redis gone) between the append and the delete of the dead letter leaves the
// event in both places; a later re-drive appends it again. The outbox then holds the same event
// id and version twice (Laravel's version guard ignores the second), and nothing is lost.
func TestACrashBetweenAppendAndDeleteLeavesADuplicateNotALoss(t *testing.T) {
	r := newDeadLetterRig(t, redistest.Mini(t), Config{})
	ev := testEvent("s1", 9, event.KindStatus, "logged_out")
	r.deadLetter(t, "refused", ev)
	r.hook.failXDelOnDead.Store(true)
	res, err := r.o.RedriveDeadLetters(context.Background(), RedriveFilter{})
	if err == nil || res.Redriven != 0 {
		t.Fatalf("re-drive with the delete failing: %+v, %v; want an error and 0 re-driven", res, err)
	}
	if left := r.all(t); len(left) != 1 || left[0].Event != ev {
		t.Fatalf("dead letters after the failed delete: %+v, want the event still there", left)
	}
	r.hook.failXDelOnDead.Store(false)
	if res, err := r.o.RedriveDeadLetters(context.Background(), RedriveFilter{}); err != nil || res.Redriven != 1 {
		t.Fatalf("second re-drive: %+v, %v", res, err)
	}
	got := r.outboxEvents(t)
	if len(got) != 2 || got[0] != ev || got[1] != ev {
		t.Fatalf("outbox holds %+v, want the same event (id %s, version %d) twice", got, ev.ID, ev.Version)
	}
	if left := r.all(t); len(left) != 0 {
		t.Fatalf("%d dead letters left", len(left))
	}
}

// A full outbox fails the re-drive loudly and leaves every dead letter where it was.
func TestRedriveIntoAFullOutboxLosesNothing(t *testing.T) {
	r := newDeadLetterRig(t, redistest.Mini(t), Config{Max: 1, AppendTimeout: 50 * time.Millisecond})
	r.deadLetter(t, "refused", testEvent("s1", 1, event.KindStatus, "connected"))
	r.deadLetter(t, "refused", testEvent("s2", 1, event.KindStatus, "connected"))
	if _, err := r.o.Append(context.Background(), testEvent("s3", 1, event.KindStatus, "connected")); err != nil {
		t.Fatal(err)
	}
	res, err := r.o.RedriveDeadLetters(context.Background(), RedriveFilter{})
	if !errors.Is(err, ErrFull) || res.Redriven != 0 {
		t.Fatalf("re-drive into a full outbox: %+v, %v; want ErrFull and 0 re-driven", res, err)
	}
	if left := r.all(t); len(left) != 2 {
		t.Fatalf("%d dead letters left, want both", len(left))
	}
}

// Dead letters written while a re-drive runs (e.g. a re-driven event refused again) wait for
// the next call: a re-drive always ends.
func TestRedriveConsidersOnlyTheDeadLettersPresentAtItsStart(t *testing.T) {
	r := newDeadLetterRig(t, redistest.Mini(t), Config{})
	r.deadLetter(t, "refused", testEvent("s1", 1, event.KindStatus, "connected"), testEvent("s2", 1, event.KindStatus, "connected"))
	var added int
	r.hook.beforeXDel = func() {
		added++
		r.rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: DefaultDeadLetterStream, Values: []any{
			"oid", "0-1", "eid", fmt.Sprintf("late-%d", added), "sid", "late", "kind", "status", "data", "connected",
			"ver", "1", "prio", "1", "ts", "1", "reason", "refused again", "at", "1"}})
	}
	res, err := r.o.RedriveDeadLetters(context.Background(), RedriveFilter{})
	if err != nil || res.Redriven != 2 || res.More {
		t.Fatalf("re-drive: %+v, %v; want the 2 present at its start", res, err)
	}
	if left := r.all(t); len(left) != 2 || left[0].Event.SessionID != "late" {
		t.Fatalf("dead letters left %+v, want the 2 written during the re-drive", left)
	}
}

// A dead letter whose outbox entry was malformed holds no event: it is counted, not re-driven,
// and stays for inspection.
func TestMalformedDeadLettersStayAndAreCounted(t *testing.T) {
	r := newDeadLetterRig(t, redistest.Mini(t), Config{})
	if err := r.rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: DefaultDeadLetterStream, Values: []any{
		"oid", "1-1", "reason", "malformed outbox entry: version: invalid syntax", "at", "1", "raw_ver", "x"}}).Err(); err != nil {
		t.Fatal(err)
	}
	r.deadLetter(t, "refused", testEvent("s1", 1, event.KindStatus, "connected"))
	res, err := r.o.RedriveDeadLetters(context.Background(), RedriveFilter{})
	if err != nil || res != (RedriveResult{Matched: 2, Redriven: 1, Unredrivable: 1}) {
		t.Fatalf("re-drive: %+v, %v", res, err)
	}
	left := r.all(t)
	if len(left) != 1 || left[0].Event.ID != "" || left[0].Reason == "" {
		t.Fatalf("left %+v, want the malformed dead letter with its reason", left)
	}
}
