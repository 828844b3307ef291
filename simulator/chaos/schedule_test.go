package chaos

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"wagate/internal/goldentest"
	"wagate/simulator/scenario"
)

// testParams are the parameters of scenarios/chaos.yaml's default draw (with a redis-server).
var testParams = Params{Start: 3 * time.Second, End: 14 * time.Second, MaxFaults: 4, RealRedis: true, Replicas: 1, SessionPrefix: "users-i0-", Sessions: 20}

// The campaign plans its draw from the base scenario: faults from 15% (at least 3 s) to 85% of
// the users' time, item refusals among the first scenario's sessions.
func TestThePlanOfTheShippedScenarioIsTheTestedOne(t *testing.T) {
	p, _, err := Plan("../../scenarios/chaos.yaml", 0, 4)
	if err != nil {
		t.Fatal(err)
	}
	p.RealRedis = true // depends on the machine
	if !reflect.DeepEqual(p, testParams) {
		t.Errorf("plan of scenarios/chaos.yaml = %+v, want %+v", p, testParams)
	}
	p, _, err = Plan("../../scenarios/chaos.yaml", 40*time.Second, 2)
	if err != nil {
		t.Fatal(err)
	}
	if p.Start != 6*time.Second || p.End != 34*time.Second || p.MaxFaults != 2 {
		t.Errorf("plan with -duration 40s = %+v, want faults from 6s to 34s, 2 at most", p)
	}
}

// The schedules of a seed are pinned by a golden file: the same seed draws the same schedules
// on every machine and in every version, unless the vocabulary changes on purpose (then run
// go test ./simulator/chaos -run Golden -update and review the diff).
func TestTheSchedulesOfASeedArePinnedByAGoldenFile(t *testing.T) {
	var b strings.Builder
	for _, s := range Draw(1, 12, testParams) {
		b.WriteString(s.String())
	}
	goldentest.Check(t, "seed-1.golden", []byte(b.String()))
}

func TestTheSameSeedDrawsTheSameSchedulesAndAnotherSeedOthers(t *testing.T) {
	a, b := Draw(42, 30, testParams), Draw(42, 30, testParams)
	for i := range a {
		if a[i].String() != b[i].String() {
			t.Fatalf("schedule %d differs between two draws of seed 42:\n%s\n%s", i, a[i], b[i])
		}
	}
	c := Draw(43, 30, testParams)
	same := 0
	for i := range a {
		if a[i].String()[strings.Index(a[i].String(), ":"):] == c[i].String()[strings.Index(c[i].String(), ":"):] {
			same++
		}
	}
	if same > 3 {
		t.Errorf("%d of 30 schedules of seeds 42 and 43 are the same", same)
	}
	// Schedule i alone is schedule i of the campaign.
	if one := DrawOne(ScheduleSeed(42, 7), 7, testParams); one.String() != a[7].String() {
		t.Errorf("schedule 7 drawn alone:\n%s\nin the campaign:\n%s", one, a[7])
	}
}

// Every drawn schedule is a valid scenario, its faults heal within the window, faults on one
// target never overlap (fakelaravel holds one set at a time; one process is stopped or paused by
// one fault at a time; a gateway restart never meets an evicting Redis), and over many schedules
// every kind of the vocabulary is drawn.
func TestDrawnSchedulesAreValidScenariosInsideTheWindow(t *testing.T) {
	base, err := baseDocument("../../scenarios/chaos.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	kinds := map[string]bool{}
	outbox := 0
	for _, s := range Draw(7, 300, testParams) {
		if len(s.Faults) == 0 || len(s.Faults) > testParams.MaxFaults {
			t.Fatalf("schedule %d has %d faults, want 1..%d", s.Index, len(s.Faults), testParams.MaxFaults)
		}
		if s.OutboxMax > 0 {
			outbox++
		}
		busy := map[string][][2]time.Duration{}
		for _, f := range s.Faults {
			kinds[vocabularyKind(f)] = true
			from := f.At.Std()
			to := from + f.Duration.Std() + f.WhatsAppSpread()
			if from < testParams.Start || to > testParams.End {
				t.Errorf("schedule %d: %s runs %s..%s, outside %s..%s", s.Index, f.Name, from, to, testParams.Start, testParams.End)
			}
			for _, on := range targets(f) {
				for _, w := range busy[on] {
					if from < w[1] && w[0] < to {
						t.Errorf("schedule %d: %s overlaps another fault on %s", s.Index, f.Name, on)
					}
				}
				busy[on] = append(busy[on], [2]time.Duration{from, to})
			}
		}
		if s.Index%50 == 0 || s.Silent() {
			doc, err := ScenarioFile(base, "scenarios/chaos.yaml", 0, 7, s)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "s.yaml")
			if err := os.WriteFile(path, doc, 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := scenario.Load(path, nil)
			if err != nil {
				t.Fatalf("schedule %d is not a valid scenario: %v\n%s", s.Index, err, doc)
			}
			if len(f.Faults) != len(s.Faults) || f.Seed != s.Seed {
				t.Errorf("schedule %d reads back with %d faults and seed %d", s.Index, len(f.Faults), f.Seed)
			}
			if s.OutboxMax > 0 && f.Gateway.Batch.OutboxMax != s.OutboxMax {
				t.Errorf("schedule %d lost its outbox bound", s.Index)
			}
			// A WhatsApp silence is noticed only through whatsmeow's keepalive: the schedule's
			// gateway runs it shortened, and only that schedule's.
			if want := map[bool]time.Duration{true: SilenceKeepalive}[s.Silent()]; f.Gateway.WATestKeepalive != want {
				t.Errorf("schedule %d (silent %v): the gateway's test keepalive is %s, want %s", s.Index, s.Silent(), f.Gateway.WATestKeepalive, want)
			}
		}
	}
	for _, k := range Kinds(true) {
		if !kinds[k] {
			t.Errorf("kind %s never drawn in 300 schedules", k)
		}
	}
	if outbox == 0 {
		t.Error("no schedule drew a tiny outbox bound")
	}
}

// Without a real redis-server, nothing that needs one is drawn: Redis faults, and gateway
// kills (the embedded miniredis dies with the gateway, outbox and all).
func TestWithoutRedisServerNoRedisFaultOrGatewayKillIsDrawn(t *testing.T) {
	p := testParams
	p.RealRedis = false
	for _, s := range Draw(3, 200, p) {
		for _, f := range s.Faults {
			if f.Process != nil && (f.Process.OnRedis() || f.Process.Action == scenario.ProcessGatewayKill || f.Process.Action == scenario.ProcessGatewayTerm) {
				t.Fatalf("schedule %d drew %s without a redis-server", s.Index, f.Name)
			}
		}
	}
	if slices.Contains(Kinds(false), "redis-restart") {
		t.Error("Kinds(false) lists redis-restart")
	}
}

func TestParamsThatLeaveNothingToDrawAreRefused(t *testing.T) {
	for name, p := range map[string]Params{
		"empty window":  {Start: 10 * time.Second, End: 10 * time.Second, MaxFaults: 1, SessionPrefix: "u-", Sessions: 1},
		"short window":  {Start: 10 * time.Second, End: 12 * time.Second, MaxFaults: 1, SessionPrefix: "u-", Sessions: 1},
		"no faults":     {Start: 0, End: 20 * time.Second, MaxFaults: 0, SessionPrefix: "u-", Sessions: 1},
		"no session id": {Start: 0, End: 20 * time.Second, MaxFaults: 1},
	} {
		if p.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := testParams.Validate(); err != nil {
		t.Errorf("the test parameters: %v", err)
	}
}

// Kinds added to the vocabulary later (generation 1 and up) are drawn from streams of their own:
// every schedule of a seed keeps every fault, time, length and outbox bound it drew before each
// generation was added (replays of earlier findings with -only play the same faults), and some
// gain faults of the new kinds, never past MaxFaults.
func TestAddingAGenerationOfKindsKeepsEveryFaultEarlierSchedulesDrew(t *testing.T) {
	if maxGeneration() < 3 {
		t.Fatalf("the vocabulary's latest generation is %d; this test expects generations 1 to 3", maxGeneration())
	}
	for g := 1; g <= maxGeneration(); g++ {
		gained := 0
		for i := range 300 {
			seed := ScheduleSeed(7, i)
			before, after := drawOne(seed, i, testParams, g-1), drawOne(seed, i, testParams, g)
			var kept []scenario.Fault
			for _, f := range after.Faults {
				if k, _ := kindNamed(vocabularyKind(f)); k.generation < g {
					kept = append(kept, f)
				}
			}
			if after.OutboxMax != before.OutboxMax || !reflect.DeepEqual(kept, before.Faults) {
				t.Fatalf("schedule %d changed when generation %d was added:\nbefore %s\nafter %s", i, g, before, after)
			}
			if len(after.Faults) > len(before.Faults) {
				gained++
			}
			if len(after.Faults) > testParams.MaxFaults {
				t.Fatalf("schedule %d has %d faults, more than %d", i, len(after.Faults), testParams.MaxFaults)
			}
		}
		// A generation's kinds take their share of the kinds playable up to it: generation 1's
		// two kinds more schedules than generation 2's one.
		if low := map[int]int{1: 20}[g]; gained < max(low, 5) || gained > 150 {
			t.Errorf("%d of 300 schedules gained a fault of generation %d, want some (%d..150)", gained, g, max(low, 5))
		}
		t.Logf("generation %d: %d of 300 schedules gained a fault", g, gained)
	}
}

// The new kinds are drawn only where the world can play them: a Redis restart while the gateway
// is down needs a redis-server and one gateway; a WhatsApp outage plays in every world.
func TestTheNewKindsAreDrawnOnlyWhereTheWorldCanPlayThem(t *testing.T) {
	for _, tc := range []struct {
		name        string
		redis       bool
		replicas    int
		redisDown   bool // redis-restart-while-gateway-down drawn
		whatsappOut bool // whatsapp-down, whatsapp-silent and whatsapp-handshake-cut drawn
	}{
		{"one gateway on redis-server", true, 1, true, true},
		{"one gateway on the embedded Redis", false, 1, false, true},
		{"three replicas on redis-server", true, 3, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testParams
			p.RealRedis, p.Replicas = tc.redis, tc.replicas
			drawn := map[string]int{}
			for _, s := range Draw(11, 400, p) {
				for _, f := range s.Faults {
					drawn[vocabularyKind(f)]++
				}
			}
			if got := drawn["redis-restart-while-gateway-down"] > 0; got != tc.redisDown {
				t.Errorf("redis-restart-while-gateway-down drawn %d times", drawn["redis-restart-while-gateway-down"])
			}
			for _, k := range []string{"whatsapp-down", "whatsapp-silent", "whatsapp-handshake-cut"} {
				if got := drawn[k] > 0; got != tc.whatsappOut {
					t.Errorf("%s drawn %d times", k, drawn[k])
				}
			}
			if got := slices.Contains(KindsOf(p), "redis-restart-while-gateway-down"); got != tc.redisDown {
				t.Errorf("KindsOf lists redis-restart-while-gateway-down: %v", got)
			}
		})
	}
}

// A campaign restricted to some kinds draws only them, from every generation alike; kinds that
// do not exist or that the world cannot play are refused.
func TestARestrictedDrawDrawsOnlyItsKinds(t *testing.T) {
	p := testParams
	p.Kinds = []string{"redis-restart-while-gateway-down", "whatsapp-down", "laravel-down"}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	drawn := map[string]int{}
	for _, s := range Draw(3, 100, p) {
		if len(s.Faults) == 0 {
			t.Fatalf("schedule %d drew nothing", s.Index)
		}
		for _, f := range s.Faults {
			drawn[vocabularyKind(f)]++
		}
	}
	for k := range drawn {
		if !slices.Contains(p.Kinds, k) {
			t.Errorf("drew %s, not one of %v", k, p.Kinds)
		}
	}
	for _, k := range p.Kinds {
		if drawn[k] < 10 {
			t.Errorf("%s drawn %d times in 100 schedules", k, drawn[k])
		}
	}
	if got := KindsOf(p); !reflect.DeepEqual(got, []string{"laravel-down", "redis-restart-while-gateway-down", "whatsapp-down"}) {
		t.Errorf("KindsOf = %v", got)
	}
	for _, bad := range [][]string{{"whatsapp-vanish"}, {"replica-kill"}} {
		q := testParams
		q.Kinds = bad
		if q.Validate() == nil {
			t.Errorf("kinds %v accepted", bad)
		}
	}
}
