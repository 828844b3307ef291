package outbox

import (
	"context"
	"errors"
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
	switch {
	case ev.Kind == event.KindMessage:
		return o.cfg.Stream + ":once:" + ev.SessionID + ":m:" + ev.Payload
	case ev.Kind == event.KindReceipt && ev.Receipt != nil:
		return o.cfg.Stream + ":once:" + ev.SessionID + ":r:" + ev.Payload + ":" + ev.Receipt.Sender + ":" + string(ev.Receipt.Status)
	}
	return ""
}

// appendOnceScript is appendScript for an event with a once key (KEYS[2]): an event the key says
// was taken answers the stream id it got, without a second entry, unless a Redis data loss came
// between (the key holds "id|generation"; the marker, KEYS[3], holds another generation now) and
// took the entry: a Redis evicting keys (allkeys-lru set at runtime) takes the stream and leaves
// once keys, and trusting such a key lost the item the journal's replay appended again (chaos
// seed 2 schedule 10). Within one generation the key alone decides: an entry gone then was
// delivered and acknowledged. A key without a generation (written before this) decides alone.
var appendOnceScript = redis.NewScript(`
local seen = redis.call('GET', KEYS[2])
if seen then
  local sid, sgen = string.match(seen, '^([^|]+)|(.*)$')
  if not sid then return seen end
  if sgen == redis.call('GET', KEYS[3]) then return sid end
  if #redis.call('XRANGE', KEYS[1], sid, sid) > 0 then return sid end
end
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return false end
local id
if ARGV[9] == '' then
  id = redis.call('XADD', KEYS[1], '*', 'eid', ARGV[2], 'sid', ARGV[3], 'kind', ARGV[4], 'data', ARGV[5], 'ver', ARGV[6], 'prio', ARGV[7], 'ts', ARGV[8])
else
  id = redis.call('XADD', KEYS[1], '*', 'eid', ARGV[2], 'sid', ARGV[3], 'kind', ARGV[4], 'data', ARGV[5], 'ver', ARGV[6], 'prio', ARGV[7], 'ts', ARGV[8], 'item', ARGV[9])
end
local gen = redis.call('GET', KEYS[3])
if gen then
  redis.call('SET', KEYS[2], id .. '|' .. gen, 'PX', ARGV[10])
else
  redis.call('SET', KEYS[2], id, 'PX', ARGV[10])
end
return id
`)

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
