package outbox

// Dead-letter inspection and re-drive (the admin side of the dead-letter stream that DeadLetter
// writes). A dead letter keeps its event whole (id, session, kind, payload, version, priority,
// time) next to the reason and the time it was given up; re-driving appends that same event, with
// its original event id and version, back to the outbox, and only then deletes the dead letter.
// Laravel's per-session version guard makes a re-driven event safe: if a newer state was applied
// meanwhile, the old version is ignored and counted as stale, never applied.

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"wagate/gateway/event"
)

// Bounds of the dead-letter admin operations.
const (
	// DefaultDeadLetterPage and MaxDeadLetterPage size ListDeadLetters pages.
	DefaultDeadLetterPage = 100
	MaxDeadLetterPage     = 1000
	// MaxRedrive bounds how many dead letters one RedriveDeadLetters call re-appends (the rest
	// waits for the next call; RedriveResult.More says so).
	MaxRedrive = 10_000
	// redriveScanPage is how many dead letters a re-drive reads per Redis round trip.
	redriveScanPage = 200
	// maxReasonFilter bounds RedriveFilter.ReasonContains.
	maxReasonFilter = 256
)

// ErrInvalidCursor matches (errors.Is) a ListDeadLetters cursor that is not a stream id.
var ErrInvalidCursor = errors.New("outbox: invalid dead-letter cursor")

// streamIDPattern is a Redis stream id: milliseconds, a dash, a sequence number.
var streamIDPattern = regexp.MustCompile(`^[0-9]{1,20}-[0-9]{1,20}$`)

// ValidCursor reports whether s is a ListDeadLetters cursor: empty (the first page) or a stream
// id ("1700000000000-0") as returned in a page's next cursor.
func ValidCursor(s string) bool {
	if s == "" {
		return true
	}
	if !streamIDPattern.MatchString(s) {
		return false
	}
	_, err := parseStreamID(s)
	return err == nil
}

// streamID is a parsed stream id.
type streamID struct{ ms, seq uint64 }

func parseStreamID(s string) (streamID, error) {
	msS, seqS, ok := strings.Cut(s, "-")
	if !ok {
		return streamID{}, fmt.Errorf("%w: %q", ErrInvalidCursor, s)
	}
	ms, err1 := strconv.ParseUint(msS, 10, 64)
	seq, err2 := strconv.ParseUint(seqS, 10, 64)
	if err1 != nil || err2 != nil {
		return streamID{}, fmt.Errorf("%w: %q", ErrInvalidCursor, s)
	}
	return streamID{ms, seq}, nil
}

// next returns the smallest id after id (an inclusive XRANGE start that excludes id; exclusive
// "(" ranges need Redis 6.2).
func (id streamID) next() (string, bool) {
	switch {
	case id.seq < ^uint64(0):
		return strconv.FormatUint(id.ms, 10) + "-" + strconv.FormatUint(id.seq+1, 10), true
	case id.ms < ^uint64(0):
		return strconv.FormatUint(id.ms+1, 10) + "-0", true
	}
	return "", false
}

// after returns the XRANGE start for the entries after cursor ("-" for the first page); ok is
// false when nothing can come after it.
func after(cursor string) (start string, ok bool, err error) {
	if cursor == "" {
		return "-", true, nil
	}
	if !ValidCursor(cursor) {
		return "", false, fmt.Errorf("%w: %q", ErrInvalidCursor, cursor)
	}
	id, err := parseStreamID(cursor)
	if err != nil {
		return "", false, err
	}
	start, ok = id.next()
	return start, ok, nil
}

// ListDeadLetters returns up to limit dead letters (at most MaxDeadLetterPage), oldest first,
// after the cursor (empty for the first page), and the cursor of the next page ("" when this page
// reached the end). A dead letter whose outbox entry was malformed has a zero Event.
func (o *Outbox) ListDeadLetters(ctx context.Context, cursor string, limit int) ([]DeadLetter, string, error) {
	switch {
	case limit <= 0:
		limit = DefaultDeadLetterPage
	case limit > MaxDeadLetterPage:
		limit = MaxDeadLetterPage
	}
	start, ok, err := after(cursor)
	if err != nil || !ok {
		return nil, "", err
	}
	// One more than asked tells whether a next page exists.
	msgs, err := o.rdb.XRangeN(ctx, o.cfg.DeadLetterStream, start, "+", int64(limit)+1).Result()
	if err != nil {
		return nil, "", fmt.Errorf("outbox: list dead letters: %w", err)
	}
	next := ""
	if len(msgs) > limit {
		msgs = msgs[:limit]
		next = msgs[limit-1].ID
	}
	out := make([]DeadLetter, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, decodeDeadLetter(m))
	}
	return out, next, nil
}

// decodeDeadLetter reads one dead-letter stream entry (the fields DeadLetter and deadLetterRaw
// write). A malformed entry's Event stays zero.
func decodeDeadLetter(m redis.XMessage) DeadLetter {
	str := func(k string) string { s, _ := m.Values[k].(string); return s }
	dl := DeadLetter{ID: m.ID, OutboxID: str("oid"), Reason: str("reason")}
	if at, err := strconv.ParseInt(str("at"), 10, 64); err == nil {
		dl.At = time.Unix(0, at).UTC()
	}
	ver, errV := strconv.ParseInt(str("ver"), 10, 64)
	prio, errP := strconv.Atoi(str("prio"))
	ts, errT := strconv.ParseInt(str("ts"), 10, 64)
	if errV != nil || errP != nil || errT != nil {
		return dl
	}
	ev := event.Event{
		ID: str("eid"), SessionID: str("sid"), Kind: event.Kind(str("kind")), Payload: str("data"),
		Version: ver, Priority: event.Priority(prio), Time: time.Unix(0, ts).UTC(),
	}
	if decodeItem(&ev, str("item")) == nil && ev.Validate() == nil {
		dl.Event = ev
	}
	return dl
}

// RedriveFilter selects the dead letters RedriveDeadLetters re-appends. The zero value selects
// every dead letter.
type RedriveFilter struct {
	// SessionID, when set, selects only that session's dead letters.
	SessionID string
	// ReasonContains, when set, selects only dead letters whose reason contains it (case
	// insensitive; at most 256 bytes).
	ReasonContains string
	// Limit bounds how many are re-appended in this call (default and maximum MaxRedrive).
	Limit int
}

// Validate checks the filter's bounds.
func (f RedriveFilter) Validate() error {
	if len(f.ReasonContains) > maxReasonFilter {
		return fmt.Errorf("outbox: reason filter is over %d bytes", maxReasonFilter)
	}
	if f.Limit < 0 || f.Limit > MaxRedrive {
		return fmt.Errorf("outbox: re-drive limit must be from 1 to %d", MaxRedrive)
	}
	return nil
}

func (f RedriveFilter) matches(dl DeadLetter) bool {
	if f.SessionID != "" && dl.Event.SessionID != f.SessionID {
		return false
	}
	if f.ReasonContains != "" && !strings.Contains(strings.ToLower(dl.Reason), strings.ToLower(f.ReasonContains)) {
		return false
	}
	return true
}

// RedriveResult counts what a re-drive did.
type RedriveResult struct {
	// Matched is how many dead letters the filter selected (re-driven or not).
	Matched int `json:"matched"`
	// Redriven is how many were appended to the outbox again and removed from the dead letters.
	Redriven int `json:"redriven"`
	// Unredrivable is how many selected dead letters hold no event to re-append (their outbox
	// entry was malformed); they stay in the dead-letter stream for inspection.
	Unredrivable int `json:"unredrivable"`
	// More is true when the limit stopped the re-drive before the end of the dead letters: call
	// again for the rest.
	More bool `json:"more"`
}

// RedriveDeadLetters re-appends the dead letters f selects to the outbox, oldest first, each with
// its original event (id, version, priority, time), and deletes each dead letter only after its
// append succeeded: a crash or a Redis error between the two leaves the event both re-appended
// and still dead-lettered (a later re-drive appends it again: a duplicate of the same version,
// which Laravel ignores as stale), never neither. It considers only the dead letters present when
// it starts (an event dead-lettered again while it runs waits for the next call), and appends at
// most f.Limit. Appends wait for room like any Append (a full outbox fails the re-drive with
// ErrFull after AppendTimeout; what was re-driven so far stays re-driven and is counted).
func (o *Outbox) RedriveDeadLetters(ctx context.Context, f RedriveFilter) (RedriveResult, error) {
	var res RedriveResult
	if err := f.Validate(); err != nil {
		return res, err
	}
	limit := f.Limit
	if limit == 0 {
		limit = MaxRedrive
	}
	last, err := o.rdb.XRevRangeN(ctx, o.cfg.DeadLetterStream, "+", "-", 1).Result()
	if err != nil {
		return res, fmt.Errorf("outbox: re-drive: read the dead letters' end: %w", err)
	}
	if len(last) == 0 {
		return res, nil
	}
	end := last[0].ID
	start := "-"
	defer func() {
		if res.Redriven > 0 {
			o.log.Info("dead letters re-driven into the outbox", "redriven", res.Redriven, "matched", res.Matched,
				"unredrivable", res.Unredrivable, "more", res.More, "session_id", f.SessionID, "reason_contains", f.ReasonContains)
		}
	}()
	for {
		msgs, err := o.rdb.XRangeN(ctx, o.cfg.DeadLetterStream, start, end, redriveScanPage).Result()
		if err != nil {
			return res, fmt.Errorf("outbox: re-drive: read dead letters: %w", err)
		}
		for _, m := range msgs {
			dl := decodeDeadLetter(m)
			if !f.matches(dl) {
				continue
			}
			if dl.Event.ID == "" { // malformed: no event (and no session a filter could match)
				res.Matched++
				res.Unredrivable++
				continue
			}
			if res.Redriven == limit {
				res.More = true
				return res, nil
			}
			res.Matched++
			if o.cfg.Redriving != nil && dl.Event.Kind.IsMessaging() {
				if err := o.cfg.Redriving(ctx, dl.Event); err != nil {
					return res, fmt.Errorf("outbox: re-drive dead letter %s (event %s): %w", dl.ID, dl.Event.ID, err)
				}
			}
			// A re-drive appends even a message the outbox took before: that is the point.
			if _, err := o.appendEvent(ctx, dl.Event, ""); err != nil {
				return res, fmt.Errorf("outbox: re-drive dead letter %s (event %s): %w", dl.ID, dl.Event.ID, err)
			}
			// Deleted only now: a failure here leaves a duplicate, not a loss.
			if err := o.rdb.XDel(ctx, o.cfg.DeadLetterStream, dl.ID).Err(); err != nil {
				return res, fmt.Errorf("outbox: re-drive: event %s re-appended, but dead letter %s not removed (a later re-drive appends it again; Laravel ignores the duplicate version): %w",
					dl.Event.ID, dl.ID, err)
			}
			res.Redriven++
		}
		if len(msgs) < redriveScanPage || msgs[len(msgs)-1].ID == end {
			return res, nil
		}
		id, err := parseStreamID(msgs[len(msgs)-1].ID)
		if err != nil {
			return res, fmt.Errorf("outbox: re-drive: %w", err)
		}
		var ok bool
		if start, ok = id.next(); !ok {
			return res, nil
		}
	}
}
