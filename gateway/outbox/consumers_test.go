package outbox

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	"wagate/gateway/event"
	"wagate/internal/redistest"
)

func TestPredecessorGone(t *testing.T) {
	self := incarnation{gatewayID: "gw", host: "h1", pid: 100, start: "s1", seq: "1"}
	alive := map[int]bool{100: true, 200: true}
	pidAlive := func(pid int) bool { return alive[pid] }
	name := func(in incarnation) string { return in.name() }
	closedOutbox := name(incarnation{"gw", "h1", 100, "s1", "3"})
	closed := func(n string) bool { return n == closedOutbox }
	cases := []struct {
		name  string
		other string
		gone  bool
	}{
		{"the legacy consumer named by the gateway id (before unique names)", "gw", true},
		{"this very consumer", name(self), false},
		{"another outbox of this process", name(incarnation{"gw", "h1", 100, "s1", "2"}), false},
		{"a closed outbox of this process (a restart inside one process)", closedOutbox, true},
		{"an earlier process with the same pid (a restarted container)", name(incarnation{"gw", "h1", 100, "s0", "1"}), true},
		{"an earlier process on this host that exited", name(incarnation{"gw", "h1", 300, "s0", "1"}), true},
		{"another live process on this host with the same gateway id", name(incarnation{"gw", "h1", 200, "s0", "1"}), false},
		{"the same gateway id on another host (rescheduled)", name(incarnation{"gw", "h2", 200, "s0", "1"}), true},
		{"another gateway", name(incarnation{"other", "h1", 300, "s0", "1"}), false},
		{"another gateway's legacy name", "other", false},
		{"a gateway id with slashes", name(incarnation{"ns/gw", "h1", 300, "s0", "1"}), false},
		{"a name that is not an incarnation", "gw/h1/notapid/s/1", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := predecessorGone(self, c.other, pidAlive, closed); got != c.gone {
				t.Fatalf("predecessorGone(%q) = %v; want %v", c.other, got, c.gone)
			}
		})
	}
}

func TestParseIncarnationReadsWhatNameWrites(t *testing.T) {
	for _, in := range []incarnation{
		{"gw", "host", 1, "abc", "1"},
		{"ns/gw-0", "pod.example", 4242, "lz3k", "17"},
	} {
		got, ok := parseIncarnation(in.name())
		if !ok || got != in {
			t.Fatalf("parseIncarnation(%q) = %+v, %v; want %+v", in.name(), got, ok, in)
		}
	}
}

func TestProcessAliveSeesThisProcessAndNotAnExitedOne(t *testing.T) {
	if !processAlive(os.Getpid()) {
		t.Fatal("this process is not alive")
	}
	if processAlive(1 << 30) { // above any pid_max
		t.Fatal("a pid that cannot exist is alive")
	}
}

func consumerNames(t *testing.T, b *redistest.Backend) []string {
	t.Helper()
	cs, err := b.Client(t).XInfoConsumers(context.Background(), DefaultStream, DefaultGroup).Result()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range cs {
		names = append(names, c.Name)
	}
	return names
}

func TestConsumerNamesAreUniquePerProcessIncarnation(t *testing.T) {
	b := redistest.Mini(t)
	log := slog.New(slog.DiscardHandler)
	a, err := New(context.Background(), b.Client(t), Config{GatewayID: "gw", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(context.Background(), b.Client(t), Config{GatewayID: "gw", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	an, cn := a.cfg.Consumer, c.cfg.Consumer
	if an == cn {
		t.Fatalf("two outboxes share the consumer name %q", an)
	}
	in, ok := parseIncarnation(an)
	if !ok || in.gatewayID != "gw" || in.pid != os.Getpid() || in.host != hostName() {
		t.Fatalf("consumer name %q = %+v; want gateway id, host and pid", an, in)
	}
}

func TestARestartedGatewayTakesOverWhatItsPreviousProcessLeftPending(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		// The previous process of gateway "gw" on this host (same pid, as in a restarted
		// container, but another start) read three entries and died before acknowledging them.
		before := incarnation{gatewayID: "gw", host: hostName(), pid: os.Getpid(), start: "earlier", seq: "1"}
		prev := newOutbox(t, b, Config{Consumer: before.name()})
		// A live gateway of another id holds one entry of its own.
		other := newOutbox(t, b, Config{GatewayID: "other", Consumer: "other/h/1/x/1"})
		for v := int64(1); v <= 3; v++ {
			if _, err := prev.Append(ctx, testEvent("s1", v, event.KindQR, "qr")); err != nil {
				t.Fatal(err)
			}
		}
		if got, _ := prev.ReadNew(ctx, 3); len(got) != 3 {
			t.Fatalf("previous process read %d; want 3", len(got))
		}
		if _, err := other.Append(ctx, testEvent("s2", 1, event.KindQR, "qr")); err != nil {
			t.Fatal(err)
		}
		if got, _ := other.ReadNew(ctx, 1); len(got) != 1 {
			t.Fatal("the other gateway read nothing")
		}

		next, err := New(ctx, b.Client(t), Config{GatewayID: "gw", Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		got, err := next.ReadOwnPending(ctx, "0", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 || got[0].Event.SessionID != "s1" {
			t.Fatalf("restarted gateway recovered %d own pending entries; want the previous process's 3", len(got))
		}
		names := consumerNames(t, b)
		if slices.Contains(names, before.name()) {
			t.Fatalf("consumers %v still list the previous process", names)
		}
		if !slices.Contains(names, "other/h/1/x/1") {
			t.Fatalf("consumers %v lost the other live gateway", names)
		}
	})
}

// A real redis-server only: miniredis reports consumers' idle times for XCLAIM alone (the
// embedded Redis lives and dies with one gateway process anyway).
func TestConsumersOfGoneGatewaysAreRemovedOnceIdleWithNothingPending(t *testing.T) {
	func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		sweeper := newOutbox(t, b, Config{GatewayID: "c", Consumer: "c/h/1/x/1"})
		idle := newOutbox(t, b, Config{GatewayID: "a", Consumer: "a/h/1/x/1"})
		holding := newOutbox(t, b, Config{GatewayID: "b", Consumer: "b/h/1/x/1"})
		// The idle gateway read an entry and acknowledged it: nothing pending.
		if _, err := idle.Append(ctx, testEvent("s0", 1, event.KindQR, "qr")); err != nil {
			t.Fatal(err)
		}
		if got, err := idle.ReadNew(ctx, 1); err != nil || len(got) != 1 || idle.Ack(ctx, got[0].ID) != nil {
			t.Fatalf("idle gateway: read %d, %v", len(got), err)
		}
		if _, err := holding.Append(ctx, testEvent("s1", 1, event.KindQR, "qr")); err != nil {
			t.Fatal(err)
		}
		if got, _ := holding.ReadNew(ctx, 1); len(got) != 1 {
			t.Fatal("holding gateway read nothing")
		}
		time.Sleep(50 * time.Millisecond)
		sweeper.cfg.ConsumerGoneAfter = 20 * time.Millisecond
		rep, err := sweeper.tidyConsumers(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(rep.Removed, []string{"a/h/1/x/1"}) {
			t.Fatalf("removed %v; want only the idle consumer with nothing pending", rep.Removed)
		}
		if names := consumerNames(t, b); !slices.Contains(names, "b/h/1/x/1") {
			t.Fatalf("consumers %v: the one with a pending entry was removed (its entry would be unclaimable)", names)
		}
		// Once its entry is claimed by a live gateway, the dead consumer goes too.
		if got, _, err := sweeper.Claim(ctx, 0, "0-0", 10); err != nil || len(got) != 1 {
			t.Fatalf("claim = %d, %v", len(got), err)
		}
		time.Sleep(50 * time.Millisecond)
		if rep, err := sweeper.tidyConsumers(ctx, false); err != nil || !slices.Equal(rep.Removed, []string{"b/h/1/x/1"}) {
			t.Fatalf("second pass removed %v, %v; want the consumer whose entry was claimed", rep.Removed, err)
		}
	}(t, redistest.Real(t))
}

func TestAGatewayRestartedInsideOneProcessTakesOverWhatItsClosedOutboxLeftPending(t *testing.T) {
	b := redistest.Mini(t)
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	first, err := New(ctx, b.Client(t), Config{GatewayID: "gw-inproc", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.Append(ctx, testEvent("s1", 1, event.KindStatus, "connected")); err != nil {
		t.Fatal(err)
	}
	if got, _ := first.ReadNew(ctx, 1); len(got) != 1 {
		t.Fatal("first outbox read nothing")
	}
	live, err := New(ctx, b.Client(t), Config{GatewayID: "gw-inproc", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := live.ReadOwnPending(ctx, "0", 10); len(got) != 0 {
		t.Fatalf("took %d entries from an outbox of this process that is still open", len(got))
	}
	first.Close() // a graceful stop leaves the entry pending
	next, err := New(ctx, b.Client(t), Config{GatewayID: "gw-inproc", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := next.ReadOwnPending(ctx, "0", 10); len(got) != 1 {
		t.Fatalf("the restarted gateway recovered %d entries; want the 1 its closed predecessor left pending", len(got))
	}
}
