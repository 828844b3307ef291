package cluster

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"wagate/internal/redistest"
)

// Timings of the tests against a real redis-server: the production ratios (TTL > deadline >
// interval), compressed.
var fast = Options{Shards: 64, LeaseTTL: 3 * time.Second, RenewInterval: 250 * time.Millisecond, RenewDeadline: 1500 * time.Millisecond}

// running starts m.Run until the returned stop is called (or the test ends); stop waits for Run.
func running(t *testing.T, m *Member) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = m.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// runUntilFenced starts m.Run until it returns or the test ends; the channel receives what Run
// returned: the ErrFenced error once the member is fenced, which is how a replica learns of it.
func runUntilFenced(t *testing.T, m *Member) <-chan error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ran, done := make(chan error, 1), make(chan struct{})
	go func() { defer close(done); ran <- m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return ran
}

func TestTwoMembersClaimDisjointShardsAndKeepThemWhileTheyRenew(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Real(t).Client(t)
	s := mustStore(t, rdb, fast)
	if err := s.CheckShards(ctx); err != nil {
		t.Fatal(err)
	}
	a, err := s.Join(ctx, "gw-a", "10.0.0.1:8080", Callbacks{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Join(ctx, "gw-b", "10.0.0.2:8080", Callbacks{})
	if err != nil {
		t.Fatal(err)
	}
	running(t, a)
	running(t, b)

	live, err := s.Live(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*Member{"gw-a": a, "gw-b": b}
	var names []string
	for _, m := range live {
		names = append(names, m.Name)
	}
	if len(names) != 2 {
		t.Fatalf("live members %+v, want gw-a and gw-b", live)
	}
	for k := range s.Shards() {
		owner, other := byName[Assign(k, names)], a
		if owner == a {
			other = b
		}
		if _, err := owner.Claim(ctx, k, 0); err != nil {
			t.Fatalf("%s claiming its assigned shard %d: %v", owner.ID(), k, err)
		}
		if _, err := other.Claim(ctx, k, 0); !errors.Is(err, ErrHeld) {
			t.Fatalf("%s claiming shard %d held by %s: err %v, want ErrHeld", other.ID(), k, owner.ID(), err)
		}
	}
	heldA, heldB := heldShards(a), heldShards(b)
	if len(heldA) == 0 || len(heldB) == 0 || len(heldA)+len(heldB) != s.Shards() {
		t.Fatalf("a holds %d, b holds %d of %d shards; want a split covering all", len(heldA), len(heldB), s.Shards())
	}
	for k := range heldA {
		if _, both := heldB[k]; both {
			t.Fatalf("shard %d held by both members", k)
		}
	}

	time.Sleep(fast.LeaseTTL + fast.RenewInterval) // longer than a lease: only renewals keep them
	for m, held := range map[*Member]map[int]int64{a: heldA, b: heldB} {
		if m.Err() != nil {
			t.Fatalf("%s fenced while renewing: %v", m.ID(), m.Err())
		}
		for k, e := range held {
			if ok, err := s.Fence(ctx, m.ID(), k, e); err != nil || !ok {
				t.Fatalf("after a lease's time, %s no longer holds shard %d at %d (%v)", m.ID(), k, e, err)
			}
		}
	}
}

func TestAPausedMemberLosesItsShardsToAHigherEpochAndItsLateWritesAreRefused(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Real(t).Client(t)
	s := mustStore(t, rdb, fast)
	a, err := s.Join(ctx, "gw-a", "", Callbacks{})
	if err != nil {
		t.Fatal(err)
	}
	pauseA := running(t, a)
	b, err := s.Join(ctx, "gw-b", "", Callbacks{})
	if err != nil {
		t.Fatal(err)
	}
	running(t, b)
	ea := mustClaim(t, a, 7)
	if _, err := b.Claim(ctx, 7, 0); !errors.Is(err, ErrHeld) {
		t.Fatalf("b claiming a's shard while a renews: err %v, want ErrHeld", err)
	}

	pauseA() // a stops renewing, as a SIGSTOPped or GC-paused process would
	paused := time.Now()
	var eb int64
	for {
		e, err := b.Claim(ctx, 7, 0)
		if err == nil {
			eb = e
			break
		}
		if !errors.Is(err, ErrHeld) {
			t.Fatal(err)
		}
		if time.Since(paused) > 2*fast.LeaseTTL {
			t.Fatalf("b could not take shard 7 %s after a stopped renewing", time.Since(paused))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if waited := time.Since(paused); waited < fast.LeaseTTL-fast.RenewInterval-200*time.Millisecond {
		t.Fatalf("b took shard 7 %s after a's last renewals, before a's lease (%s) could end", waited, fast.LeaseTTL)
	}
	if eb <= ea || Version(eb, 1) <= Version(ea, VersionsPerEpoch-1) {
		t.Fatalf("takeover epoch %d not above %d: the zombie's versions would win", eb, ea)
	}

	// a resumes and, not knowing yet, tries to act for shard 7: every write is refused.
	if ok, err := a.Fence(ctx, 7, ea); err != nil || ok {
		t.Fatalf("a's fence check after the takeover = %v, %v; want false", ok, err)
	}
	if err := a.Release(ctx, 7, ea); !errors.Is(err, ErrNotHolder) {
		t.Fatalf("a's late release: err %v, want ErrNotHolder", err)
	}
	if _, err := a.Bump(ctx, 7, ea); !errors.Is(err, ErrNotHolder) {
		t.Fatalf("a's late bump: err %v, want ErrNotHolder", err)
	}
	// Its renew deadline passed long ago on its own clock, so it fences itself without asking
	// Redis (which would refuse too: TestARenewAfterTheLeaseExpiredInRedisIsRefused).
	if _, err := a.Renew(ctx); !errors.Is(err, ErrFenced) {
		t.Fatalf("a's late renew: err %v, want ErrFenced", err)
	}
	if err := a.Err(); !errors.Is(err, ErrFenced) {
		t.Fatalf("a.Err() after its late renew was refused = %v, want ErrFenced", err)
	}
	if _, err := a.Claim(ctx, 7, 0); !errors.Is(err, ErrFenced) {
		t.Fatalf("a claiming after being fenced: err %v, want ErrFenced", err)
	}
	if holder, e, _ := s.Holder(ctx, 7); holder != b.ID() || e != eb {
		t.Fatalf("shard 7 held by %q at %d after a's late writes, want %q at %d", holder, e, b.ID(), eb)
	}
	// The replica rejoins as a new incarnation and can claim again once shards are free.
	a2, err := s.Join(ctx, "gw-a", "", Callbacks{})
	if err != nil || a2.ID() == a.ID() {
		t.Fatalf("rejoin: %v, id %q (was %q)", err, a2.ID(), a.ID())
	}
}

func TestAMemberCutFromRedisFencesItselfBeforeItsLeaseEnds(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Real(t)
	proxy := redistest.StartFreezingProxy(t, srv.Addr)
	viaProxy := redis.NewClient(&redis.Options{Addr: proxy.Addr(), Protocol: 2})
	t.Cleanup(func() { _ = viaProxy.Close() })
	direct := srv.Client(t)

	a, err := mustStore(t, viaProxy, fast).Join(ctx, "gw-a", "", Callbacks{})
	if err != nil {
		t.Fatal(err)
	}
	ranA := runUntilFenced(t, a)
	s := mustStore(t, direct, fast)
	b, err := s.Join(ctx, "gw-b", "", Callbacks{})
	if err != nil {
		t.Fatal(err)
	}
	running(t, b)
	ea := mustClaim(t, a, 3)
	time.Sleep(2 * fast.RenewInterval)

	proxy.Freeze() // Redis stops answering a; a's calls hang
	cut := time.Now()
	var fenced error
	select {
	case fenced = <-ranA:
		after := time.Since(cut)
		if !errors.Is(fenced, ErrFenced) {
			t.Fatalf("a's Member.Run returned %v, want ErrFenced", fenced)
		}
		if after < fast.RenewDeadline-fast.RenewInterval-100*time.Millisecond || after > fast.RenewDeadline+time.Second {
			t.Fatalf("a fenced itself %s after the cut, want about the renew deadline %s", after, fast.RenewDeadline)
		}
	case <-time.After(fast.LeaseTTL):
		t.Fatalf("a was not fenced within a lease (%s) of losing Redis", fast.LeaseTTL)
	}
	// a stopped while its lease still runs in Redis: nobody could have taken shard 3 yet.
	if _, err := b.Claim(ctx, 3, 0); !errors.Is(err, ErrHeld) {
		t.Fatalf("b claiming shard 3 right after a fenced itself: err %v, want ErrHeld (a's lease still runs)", err)
	}
	if a.HeldCount() != 0 || a.Err() == nil {
		t.Fatalf("fenced a still believes it holds %v (err %v)", heldShards(a), a.Err())
	}
	deadline := time.Now().Add(2 * fast.LeaseTTL)
	for {
		eb, err := b.Claim(ctx, 3, 0)
		if err == nil {
			if eb <= ea {
				t.Fatalf("takeover epoch %d not above %d", eb, ea)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b never took shard 3: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := a.Err(); err != fenced {
		t.Fatalf("a.Err() after b's takeover = %v, want the fence Run returned (%v)", err, fenced)
	}
}

func TestLeaveHandsEveryShardOverWithoutWaitingForTheLease(t *testing.T) {
	ctx := context.Background()
	s := mustStore(t, redistest.Real(t).Client(t), fast)
	a, err := s.Join(ctx, "gw-a", "", Callbacks{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Join(ctx, "gw-b", "", Callbacks{})
	if err != nil {
		t.Fatal(err)
	}
	epochs := map[int]int64{}
	for k := range 8 {
		epochs[k] = mustClaim(t, a, k)
	}
	if err := a.Leave(ctx); err != nil { // SIGTERM
		t.Fatal(err)
	}
	for k, ea := range epochs {
		eb, err := b.Claim(ctx, k, 0)
		if err != nil || eb <= ea {
			t.Fatalf("b claiming shard %d right after a left: %d, %v; want an epoch above %d", k, eb, err, ea)
		}
	}
	if !errors.Is(a.Err(), ErrFenced) {
		t.Fatalf("a after leaving: err %v, want ErrFenced", a.Err())
	}
	if live, _ := s.Live(ctx); len(live) != 1 || live[0].ID != b.ID() {
		t.Fatalf("live members after a left: %+v", live)
	}
}

func TestConcurrentClaimsOfOneShardHaveExactlyOneWinner(t *testing.T) {
	ctx := context.Background()
	s := mustStore(t, redistest.Real(t).Client(t), fast)
	var members []*Member
	for _, name := range []string{"gw-a", "gw-b", "gw-c"} {
		m, err := s.Join(ctx, name, "", Callbacks{})
		if err != nil {
			t.Fatal(err)
		}
		members = append(members, m)
	}
	for k := range 16 {
		var wg sync.WaitGroup
		wins := make(chan *Member, len(members)*4)
		for _, m := range members {
			for range 4 { // a member retrying concurrently with itself wins the same epoch
				wg.Go(func() {
					if _, err := m.Claim(ctx, k, 0); err == nil {
						wins <- m
					} else if !errors.Is(err, ErrHeld) {
						t.Errorf("claim of shard %d: %v", k, err)
					}
				})
			}
		}
		wg.Wait()
		close(wins)
		winners := map[*Member]bool{}
		for m := range wins {
			winners[m] = true
		}
		holder, e, _ := s.Holder(ctx, k)
		if len(winners) != 1 {
			t.Fatalf("shard %d: %d members won a concurrent claim, want 1", k, len(winners))
		}
		for m := range winners {
			if m.ID() != holder || heldShards(m)[k] != e {
				t.Fatalf("shard %d: winner %s thinks it holds epoch %d, Redis says %s at %d", k, m.ID(), heldShards(m)[k], holder, e)
			}
		}
	}
}

// Issue 16, chaos-cluster seed 1 schedule 1 (a replica SIGSTOPped 12 s, past its 10 s lease): on
// SIGCONT every goroutine whose timer expired runs at once, and the delivery's flusher asked
// "do I hold this shard?" before Member.Run's deadline timer fenced the member. The member
// answered from its claims, so the resumed replica sent a batch of entries the shard's new
// holder had adopted and sent already: a customer's message applied twice. A member past its
// renew deadline holds nothing, whoever asks first; a shorter pause changes nothing.
func TestAMemberResumedPastItsRenewDeadlineHoldsNothingBeforeRunNotices(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Real(t).Client(t)
	s := mustStore(t, rdb, fast)
	a, err := s.Join(ctx, "gw-a", "", Callbacks{})
	if err != nil {
		t.Fatal(err)
	}
	pauseA := running(t, a)
	b, err := s.Join(ctx, "gw-b", "", Callbacks{})
	if err != nil {
		t.Fatal(err)
	}
	running(t, b)
	ea := mustClaim(t, a, 7)
	mustClaim(t, a, 8)
	time.Sleep(2 * fast.RenewInterval) // a renewed since its claims

	pauseA() // Run stops, as in a SIGSTOPped process: nothing notices the time passing
	paused := time.Now()
	time.Sleep(fast.RenewDeadline / 3)
	if e, ok := a.HeldEpoch(7); !ok || e != ea || a.Err() != nil {
		t.Fatalf("a paused %s (< its renew deadline %s): HeldEpoch(7) = %d, %v, err %v; want %d held, not fenced",
			time.Since(paused).Round(time.Millisecond), fast.RenewDeadline, e, ok, a.Err(), ea)
	}

	deadline := time.Now().Add(2 * fast.LeaseTTL)
	for {
		if _, err := b.Claim(ctx, 7, 0); err == nil {
			break
		} else if !errors.Is(err, ErrHeld) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("b could not take shard 7 %s after a paused", time.Since(paused))
		}
		time.Sleep(50 * time.Millisecond)
	}

	// a resumes; Run has not run yet. Whatever asks first learns a holds nothing.
	if e, ok := a.HeldEpoch(7); ok {
		t.Fatalf("a resumed %s after its last renew (renew deadline %s) still holds shard 7 at %d, which b holds now",
			time.Since(paused).Round(time.Millisecond), fast.RenewDeadline, e)
	}
	if n, held := a.HeldCount(), a.HeldShards(); n != 0 || len(held) != 0 {
		t.Fatalf("a past its renew deadline holds %d shards (%v); want none", n, held)
	}
	if err := a.Err(); !errors.Is(err, ErrFenced) {
		t.Fatalf("a.Err() after its first question past the deadline = %v; want ErrFenced (Run returns it)", err)
	}
	if _, err := a.Claim(ctx, 9, 0); !errors.Is(err, ErrFenced) {
		t.Fatalf("a claiming past its renew deadline: err %v, want ErrFenced", err)
	}
}
