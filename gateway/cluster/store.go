package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Errors of claims and leases; match them with errors.Is.
var (
	// ErrFenced: the member's lease is gone (expired in Redis, or not renewed within the renew
	// deadline); it must stop acting for every shard and rejoin as a new incarnation.
	ErrFenced = errors.New("cluster: member fenced")
	// ErrHeld: the shard is held by another live member.
	ErrHeld = errors.New("cluster: shard held by another live member")
	// ErrNotHolder: a compare-and-set (release, bump) found another holder or a newer epoch.
	ErrNotHolder = errors.New("cluster: not the holder of this shard at this epoch")
)

// Lease timing defaults and bounds (the gateway's cluster-lease-ttl setting).
const (
	// DefaultLeaseTTL is a member lease's length; renews come every fifth of it and a member
	// fences itself after RenewDeadlineShare of it without a successful renew.
	DefaultLeaseTTL = 10 * time.Second
	// MinLeaseTTL is the shortest lease the gateway accepts (tests use short ones; production
	// wants seconds of slack for GC pauses and Redis failovers).
	MinLeaseTTL = time.Second
	// MaxShards bounds S (the rebalancer reads every shard's holder each round).
	MaxShards = 65536
	// DefaultHandoverRate is how many shards per second a replica hands over by default when
	// assignment changes: a join or a leave moves sessions at a bounded rate.
	DefaultHandoverRate = 2
)

// LeaseTimings returns the renew interval (TTL/5) and the renew deadline (0.6 TTL) of a lease
// TTL: with the default 10 s, a renew every 2 s and fencing after 6 s, >= 4 s before the
// lease can end in Redis.
func LeaseTimings(ttl time.Duration) (interval, deadline time.Duration) {
	return ttl / 5, ttl * 3 / 5
}

// Options configure a Store. Zero values take the defaults.
type Options struct {
	// Prefix starts every key and must be a Redis hash tag so the scripts touch one slot;
	// default "{wagate}".
	Prefix string
	// Shards is S, fixed per installation (CheckShards); default DefaultShards.
	Shards int
	// LeaseTTL is how long a member stays live after its last renew, on Redis's clock; default 10 s.
	LeaseTTL time.Duration
	// RenewInterval is how often Member.Run renews; default 2 s.
	RenewInterval time.Duration
	// RenewDeadline: a member that has not renewed for this long, on its own monotonic clock since
	// it sent its last successful renew, fences itself; default 6 s. It must be below LeaseTTL so
	// that a replica which is still running stops before another may claim its shards.
	RenewDeadline time.Duration
	// PruneAfter forgets members expired for this long (at each join); default 1 h.
	PruneAfter time.Duration
	// Logger gets claims, losses and fencing; default slog.Default().
	Logger *slog.Logger
}

func (o *Options) fill() error {
	if o.Prefix == "" {
		o.Prefix = "{wagate}"
	}
	if o.Shards == 0 {
		o.Shards = DefaultShards
	}
	if o.LeaseTTL == 0 {
		o.LeaseTTL = 10 * time.Second
	}
	if o.RenewInterval == 0 {
		o.RenewInterval = 2 * time.Second
	}
	if o.RenewDeadline == 0 {
		o.RenewDeadline = 6 * time.Second
	}
	if o.PruneAfter == 0 {
		o.PruneAfter = time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	switch {
	case o.Shards < 1:
		return fmt.Errorf("cluster: shards must be >= 1, got %d", o.Shards)
	case o.RenewInterval <= 0 || o.RenewInterval >= o.RenewDeadline:
		return fmt.Errorf("cluster: renew interval (%s) must be > 0 and below the renew deadline (%s)", o.RenewInterval, o.RenewDeadline)
	case o.RenewDeadline >= o.LeaseTTL:
		return fmt.Errorf("cluster: renew deadline (%s) must be below the lease TTL (%s)", o.RenewDeadline, o.LeaseTTL)
	}
	return nil
}

type keys struct {
	members, holders, epochs, info, seq, shardCount, returning string
}

// Store is the cluster state of one installation in Redis.
type Store struct {
	rdb  redis.UniversalClient
	opts Options
	keys keys
	log  *slog.Logger
}

// New returns a Store on rdb (a plain, Sentinel-failover or cluster client).
func New(rdb redis.UniversalClient, opts Options) (*Store, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	p := opts.Prefix
	return &Store{rdb: rdb, opts: opts, log: opts.Logger, keys: keys{
		members: p + ":members", holders: p + ":holders", epochs: p + ":epochs",
		info: p + ":member:", seq: p + ":incarnation", shardCount: p + ":shards", returning: p + ":returning",
	}}, nil
}

// Shards returns S.
func (s *Store) Shards() int { return s.opts.Shards }

func (s *Store) scriptKeys() []string {
	return []string{s.keys.members, s.keys.holders, s.keys.epochs, s.keys.info, s.keys.seq, s.keys.returning}
}

// MemberInfo describes a live member.
type MemberInfo struct {
	ID     string    // incarnation id, "<name>#<n>"
	Name   string    // the replica's stable name (gateway id)
	Addr   string    // advertised address, for forwarding
	Expiry time.Time // lease end on Redis's clock
}

// Live returns the live members, soonest expiry first.
func (s *Store) Live(ctx context.Context) ([]MemberInfo, error) {
	res, err := liveScript.Run(ctx, s.rdb, s.scriptKeys()).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("cluster: list live members: %w", err)
	}
	out := make([]MemberInfo, 0, len(res)/2)
	for i := 0; i+1 < len(res); i += 2 {
		ms, _ := strconv.ParseFloat(res[i+1], 64)
		info, err := s.rdb.HMGet(ctx, s.keys.info+res[i], "name", "addr").Result()
		if err != nil {
			return nil, fmt.Errorf("cluster: read member %s: %w", res[i], err)
		}
		m := MemberInfo{ID: res[i], Expiry: time.UnixMilli(int64(ms))}
		m.Name, _ = info[0].(string)
		m.Addr, _ = info[1].(string)
		out = append(out, m)
	}
	return out, nil
}

// Holder returns shard's holder ("" when released or never claimed; it may be a dead member)
// and its current epoch.
func (s *Store) Holder(ctx context.Context, shard int) (string, int64, error) {
	f := strconv.Itoa(shard)
	h, err := s.rdb.HGet(ctx, s.keys.holders, f).Result()
	if err != nil && !redisNil(err) {
		return "", 0, fmt.Errorf("cluster: read holder of shard %d: %w", shard, err)
	}
	e, err := s.rdb.HGet(ctx, s.keys.epochs, f).Int64()
	if err != nil && !redisNil(err) {
		return "", 0, fmt.Errorf("cluster: read epoch of shard %d: %w", shard, err)
	}
	return h, e, nil
}

// Fence reports whether member still holds shard at epoch and is live: the check before acting
// for a session of the shard that cannot be fenced by versions (reconnecting to WhatsApp).
func (s *Store) Fence(ctx context.Context, member string, shard int, epoch int64) (bool, error) {
	n, err := fenceScript.Run(ctx, s.rdb, s.scriptKeys(), shard, member, epoch).Int()
	if err != nil {
		return false, fmt.Errorf("cluster: fence check of shard %d: %w", shard, err)
	}
	return n == 1, nil
}

// ShardState is one shard's row of a Snapshot.
type ShardState struct {
	Shard  int    `json:"shard"`
	Holder string `json:"holder"` // incarnation id; "" when released, never claimed, or its holder is not live
	Epoch  int64  `json:"epoch"`  // current epoch (kept when released)
	// WaitingFor names the replica the shard waits for (its holder left for a restart and the
	// grace has not ended; LeaveReturning); "" otherwise.
	WaitingFor string `json:"waiting_for,omitempty"`
}

// Snapshot returns the live members and every shard's live holder and epoch (GET /cluster). Read
// in a few round trips, not atomically: a view for operators, not a decision.
func (s *Store) Snapshot(ctx context.Context) ([]MemberInfo, []ShardState, error) {
	returning, err := s.returning(ctx)
	if err != nil {
		return nil, nil, err
	}
	members, err := s.Live(ctx)
	if err != nil {
		return nil, nil, err
	}
	live := make(map[string]bool, len(members))
	liveNames := make(map[string]bool, len(members))
	for _, m := range members {
		live[m.ID] = true
		liveNames[m.Name] = true
	}
	holders, err := s.rdb.HGetAll(ctx, s.keys.holders).Result()
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: read shard holders: %w", err)
	}
	epochs, err := s.rdb.HGetAll(ctx, s.keys.epochs).Result()
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: read shard epochs: %w", err)
	}
	shards := make([]ShardState, s.opts.Shards)
	for k := range shards {
		f := strconv.Itoa(k)
		shards[k].Shard = k
		switch h := holders[f]; {
		case live[h]:
			shards[k].Holder = h
		case h != "" && returning[NameOf(h)] && !liveNames[NameOf(h)]:
			shards[k].WaitingFor = NameOf(h)
		}
		shards[k].Epoch, _ = strconv.ParseInt(epochs[f], 10, 64)
	}
	return members, shards, nil
}
