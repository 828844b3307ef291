package outbox

import (
	"context"
	"testing"

	"wagate/gateway/event"
	"wagate/internal/redistest"
)

// A Redis restarted on AOF while no gateway ran keeps the marker and may have lost its last second
// of writes: the running gateways' keepers never saw it (restartedGeneration), so the gateway that
// starts next tells it from the run it recorded. Every gateway that notices the restart, at its
// start or running, arrives at the one generation derived from the new run_id: one loss, one
// resend of every state, one journal replay each, whoever noticed first.
func TestARedisRestartedWhileNoGatewayRanIsNoticedAtStartAsTheOneGenerationOfThatRun(t *testing.T) {
	s := redistest.StartServer(t, redistest.Options{AppendOnly: true})
	b := &redistest.Backend{Name: "redis-server", Addr: s.Addr, Real: s}
	ctx := context.Background()
	first := newOutbox(t, b, Config{Consumer: "gw-a"})
	// A replica that runs across the restart and notices it with its keeper.
	lost := &losses{}
	running := newOutbox(t, b, Config{Consumer: "gw-b", OnDataLost: func(g int64) { lost.b = append(lost.b, g) }})
	recorded := first.Run()
	if recorded == 0 {
		t.Fatal("a redis-server's run reads 0; want its run_id's number")
	}
	before := first.Generation()
	if _, err := first.Append(ctx, testEvent("s1", 1, event.KindStatus, "connected")); err != nil {
		t.Fatal(err)
	}
	first.Close()
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}

	// Two replicas start together on the restarted server, having recorded the old run: both read
	// the marker the AOF kept, then both compare runs.
	starting := []*Outbox{newOutbox(t, b, Config{Consumer: "gw-a"}), newOutbox(t, b, Config{Consumer: "gw-c"})}
	var gens []int64
	for _, o := range starting {
		if o.Generation() != before {
			t.Fatalf("%s: generation at New %d; want the marker the AOF kept (%d)", o.cfg.Consumer, o.Generation(), before)
		}
	}
	for _, o := range starting {
		restarted, err := o.RestartedSince(ctx, recorded)
		if err != nil || !restarted {
			t.Fatalf("%s: RestartedSince(the recorded run) = %v, %v; want the restart noticed", o.cfg.Consumer, restarted, err)
		}
		if o.Generation() == before || o.Generation() != o.Run() {
			t.Fatalf("%s: generation %d (was %d, run %d); want the new run's", o.cfg.Consumer, o.Generation(), before, o.Run())
		}
		if again, err := o.RestartedSince(ctx, o.Run()); err != nil || again {
			t.Fatalf("%s: RestartedSince(the run now) = %v, %v; want no restart", o.cfg.Consumer, again, err)
		}
		gens = append(gens, o.Generation())
	}
	for _, o := range starting {
		if l, err := o.CheckGeneration(ctx); err != nil || l {
			t.Fatalf("%s: keeper's check after the start = %v, %v; want the loss not counted again", o.cfg.Consumer, l, err)
		}
	}
	// A replica starting after the new run was recorded reads the new generation and finds no
	// restart.
	late := newOutbox(t, b, Config{Consumer: "gw-d"})
	if restarted, err := late.RestartedSince(ctx, late.Run()); err != nil || restarted || late.Generation() != gens[0] {
		t.Fatalf("a later start: restarted %v, %v, generation %d; want no restart and generation %d", restarted, err, late.Generation(), gens[0])
	}
	if gens[0] != gens[1] {
		t.Fatalf("the starting replicas' generations %v; want one", gens)
	}
	if l, err := running.CheckGeneration(ctx); err != nil || !l || len(lost.b) != 1 || lost.b[0] != gens[0] {
		t.Fatalf("the running replica: check = %v, %v, told %v; want one loss of generation %d", l, err, lost.b, gens[0])
	}
	if v, err := b.Client(t).Get(ctx, running.cfg.MarkerKey).Int64(); err != nil || v != gens[0] {
		t.Fatalf("marker %d, %v; want %d", v, err, gens[0])
	}
}

// What RestartedSince decides from the run recorded and the server's: only a known run that is
// not the server's is a restart.
func TestOnlyARecordedRunThatIsNotTheServersIsARestart(t *testing.T) {
	s := redistest.StartServer(t, redistest.Options{AppendOnly: true})
	real := &redistest.Backend{Name: "redis-server", Addr: s.Addr, Real: s}
	for _, c := range []struct {
		name     string
		backend  func(tb testing.TB) *redistest.Backend
		recorded func(o *Outbox) int64
		want     bool
	}{
		{"a first start: nothing recorded", func(testing.TB) *redistest.Backend { return real }, func(*Outbox) int64 { return 0 }, false},
		{"the same run", func(testing.TB) *redistest.Backend { return real }, func(o *Outbox) int64 { return o.Run() }, false},
		{"another run", func(testing.TB) *redistest.Backend { return real }, func(o *Outbox) int64 { return o.Run() + 1 }, true},
		{"a server that does not tell its run (miniredis)", redistest.Mini, func(*Outbox) int64 { return 12345 }, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := newOutbox(t, c.backend(t), Config{Consumer: "gw-a"})
			before := o.Generation()
			got, err := o.RestartedSince(context.Background(), c.recorded(o))
			if err != nil || got != c.want {
				t.Fatalf("RestartedSince = %v, %v; want %v", got, err, c.want)
			}
			if !got && o.Generation() != before {
				t.Fatalf("generation changed from %d to %d without a restart", before, o.Generation())
			}
		})
	}
}
