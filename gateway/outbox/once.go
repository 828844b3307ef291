package outbox

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"wagate/gateway/event"
)

// OnceWindow is how long the outbox remembers a customer's message or receipt it took. WhatsApp
// delivers again what the gateway did not acknowledge, and an append whose answer never came (Redis
// paused past the append deadline, then ran it) was refused to WhatsApp although it was stored:
// without this memory its redelivery would be appended, and sent to Laravel, a second time.
const OnceWindow = time.Hour

// onceKey names what makes a messaging event the one WhatsApp delivered before: the session, the
// message and, for a receipt, its sender and status. Other kinds have none: a repeated state change
// is harmless (Laravel keeps the highest version) and is not redelivered by WhatsApp.
func (o *Outbox) onceKey(ev event.Event) string {
	if item := ItemKey(ev); item != "" {
		return o.cfg.Stream + ":once:" + item
	}
	return ""
}

// ItemKey is the identity of a customer's message or receipt, what its once key is named by:
// two events of one ItemKey (WhatsApp's redelivery under a new sequence, the journal's replay)
// are one item to Laravel. "" for other kinds.
func ItemKey(ev event.Event) string {
	switch {
	case ev.Kind == event.KindMessage:
		return ev.SessionID + ":m:" + ev.Payload
	case ev.Kind == event.KindReceipt && ev.Receipt != nil:
		return ev.SessionID + ":r:" + ev.Payload + ":" + ev.Receipt.Sender + ":" + string(ev.Receipt.Status)
	}
	return ""
}

// appendOnceScript is appendScript for an event with a once key (KEYS[2]): an event the key says
// was taken answers the stream id it got, without a second entry, unless a Redis data loss came
// between (the key holds "id|generation"; the marker, KEYS[3], holds another generation now) and
// took the entry: a Redis evicting keys (allkeys-lru set at runtime) takes the stream and leaves
// once keys, and trusting such a key lost the item the journal's replay appended again (chaos
// seed 2 schedule 10). Within one generation the key alone decides: an entry gone then was
// delivered and acknowledged. An append made while the marker was gone (evicted: a loss the keeper
// has not noticed yet) keeps an empty generation, which no generation matches: trusting it alone
// lost the item when the replay of that loss found it (chaos seed 1 schedule 22, -kinds
// redis-evict). A key without a generation (written by an older gateway) decides alone.
//
// The key holds the event id too ("id|generation|event id"), and the entry found at its stream
// id vouches for the item only if it is that event's: a stream removed (evicted) and recreated
// numbers its entries from the clock again, so within one millisecond another item's entry takes
// the vanished entry's id. Trusting any entry at that id lost a customer's message (chaos seed 1
// schedule 40, -kinds redis-evict with a gateway pause: the journal's replay appended message 2
// at 1796623539734-0, the stream was evicted, message 3 got 1796623539734-0 in the recreated
// stream, and the next loss's replay of message 2 was answered message 3's entry). Another event's
// entry at that id means the stream was lost since the key was written, whatever the marker says
// (a loss not noticed yet): the item is appended again.
var appendOnceScript = redis.NewScript(`
local seen = redis.call('GET', KEYS[2])
if seen then
  local sid, sgen, seid = string.match(seen, '^([^|]+)|([^|]*)|(.*)$')
  if not sid then sid, sgen = string.match(seen, '^([^|]+)|(.*)$') end
  if not sid then return seen end
  local found = redis.call('XRANGE', KEYS[1], sid, sid)
  local theirs = false
  if #found > 0 then
    if not seid then return sid end
    local fields = found[1][2]
    for i = 1, #fields, 2 do
      if fields[i] == 'eid' then
        if fields[i + 1] == seid then return sid end
        theirs = true
      end
    end
  end
  if not theirs and sgen == redis.call('GET', KEYS[3]) then return sid end
end
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return false end
local id
if ARGV[9] == '' then
  id = redis.call('XADD', KEYS[1], '*', 'eid', ARGV[2], 'sid', ARGV[3], 'kind', ARGV[4], 'data', ARGV[5], 'ver', ARGV[6], 'prio', ARGV[7], 'ts', ARGV[8])
else
  id = redis.call('XADD', KEYS[1], '*', 'eid', ARGV[2], 'sid', ARGV[3], 'kind', ARGV[4], 'data', ARGV[5], 'ver', ARGV[6], 'prio', ARGV[7], 'ts', ARGV[8], 'item', ARGV[9])
end
local gen = redis.call('GET', KEYS[3]) or ''
redis.call('SET', KEYS[2], id .. '|' .. gen .. '|' .. ARGV[2], 'PX', ARGV[10])
return id
`)

// ErrOvertakenByLoss matches (errors.Is) an Append of a customer's message or receipt that gave
// way to the message journal's replay (Config.Journaled): the outbox noticed that Redis lost its
// data while the append waited (for room, or for Redis to take it), and the replay of that loss
// appends the item, whose journal row was written before the append began, unless the item is
// in the stream or held by a delivery already. The item is accepted: the journal carries it.
var ErrOvertakenByLoss = errors.New("outbox: a Redis data loss overtook the append; the message journal's replay appends the item")

// overtakenByLoss reports whether an append with the once key once that began in generation began
// gives way to the journal's replay: the outbox is Journaled and noticed a loss since the append
// began. Appending it anyway would race the replay, and the once key, the only thing that makes
// their two appends one entry, does not outlive an evicting Redis: chaos seed 1 schedule 18
// (-kinds redis-evict) had Laravel apply a customer's message twice after a session's append,
// retrying through allkeys-lru's OOM refusals since before the loss, took once the replay's entry
// of the same event was read and its once key evicted.
func (o *Outbox) overtakenByLoss(once string, began int64) bool {
	return once != "" && o.cfg.Journaled && o.generation.Load() != began
}

// gaveWay logs an append that gave way to the journal's replay and builds its error.
func (o *Outbox) gaveWay(ev event.Event, began int64) error {
	o.log.Info("outbox: Redis lost its data while a message or receipt waited to be appended; the message journal's replay appends it",
		"event_id", ev.ID, "session_id", ev.SessionID, "kind", ev.Kind, "began_in_generation", began, "generation", o.generation.Load())
	return fmt.Errorf("outbox: event %s: %w", ev.ID, ErrOvertakenByLoss)
}

// tryAppendOnce appends once an event with a once key (full is true when the stream had no room).
func (o *Outbox) tryAppendOnce(ctx context.Context, args []any, once string) (id string, full bool, err error) {
	id, err = appendOnceScript.Run(ctx, o.rdb, []string{o.cfg.Stream, once, o.cfg.MarkerKey},
		append(args, strconv.FormatInt(OnceWindow.Milliseconds(), 10))...).Text()
	if errors.Is(err, redis.Nil) {
		return "", true, nil
	}
	if err != nil {
		return "", false, err
	}
	o.lastLen.Add(1)
	return id, false, nil
}
