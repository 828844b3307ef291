// Package chaos is the generative fault campaign (bin/simulator chaos): it draws random fault
// schedules from a vocabulary of production faults (Laravel answers, Redis trouble, gateway
// process faults, a tiny outbox, WhatsApp churn waves), reproducibly from a seed, plays each on a
// fresh world through simulator/run (a schedule is a scenario file, so the scenario schedule's
// fault players play it), and judges each run by the delivery invariants after healing: every
// final state in Laravel equals the gateway's and the truth's, nothing stale, dead letters only
// for injected item refusals, recovery within a bound, no retry storm (the gateway's retries
// within its retry budget), Laravel's load during faults bounded. A failing schedule is kept
// as a replayable scenario file; the campaign writes report.md, report.html and report.json.
//
// Like Jepsen's nemesis, but for a WhatsApp gateway in front of Laravel.
package chaos

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"time"

	"wagate/simulator/scenario"
)

// RedirectTarget is where injected redirects point: a loopback host nothing listens on, other
// than fakelaravel's, so a client that wrongly follows it stays on this machine and fails.
const RedirectTarget = "http://127.0.0.2:1/elsewhere"

// Params say what a campaign may draw and when.
type Params struct {
	// Start and End bound the faults: each begins at or after Start and heals by End (times since
	// the users start).
	Start, End time.Duration
	// MaxFaults is the most faults one schedule draws (at least 1; a SIGTERM during a failure
	// window counts as two).
	MaxFaults int
	// RealRedis says the world runs a real redis-server: Redis faults, and gateway kills (the
	// embedded miniredis dies with the gateway, taking the outbox along by design), are drawn
	// only then.
	RealRedis bool
	// Replicas is the base scenario's gateway.replicas: with more than one, replica faults
	// (a replica's SIGKILL, a SIGSTOP longer than its lease, a rolling restart) are drawn too.
	Replicas int
	// SessionPrefix and Sessions name the session ids the users create (prefix + 0..Sessions-1),
	// from which item refusals choose.
	SessionPrefix string
	Sessions      int
	// Kinds, when set, restricts the draw to these kinds of the vocabulary (a campaign biased to
	// them, e.g. to try kinds just added): every fault is drawn among them alike, whatever their
	// generation, so such a campaign's schedules are not the seed's unrestricted ones.
	Kinds []string `json:",omitempty"`
}

// Validate reports parameters that leave nothing to draw.
func (p Params) Validate() error {
	switch {
	case p.Start < 0 || p.End <= p.Start:
		return fmt.Errorf("fault window %s..%s is empty", p.Start, p.End)
	case p.End-p.Start < 4*time.Second:
		return fmt.Errorf("fault window %s..%s is shorter than 4s", p.Start, p.End)
	case p.MaxFaults < 1:
		return fmt.Errorf("max faults %d: at least 1", p.MaxFaults)
	case p.Sessions < 1 || p.SessionPrefix == "":
		return fmt.Errorf("item refusals need the users' session ids (prefix %q, %d sessions)", p.SessionPrefix, p.Sessions)
	}
	for _, name := range p.Kinds {
		k, ok := kindNamed(name)
		switch {
		case !ok:
			return fmt.Errorf("%q is not a kind of the vocabulary (%s)", name, strings.Join(allKinds(), ", "))
		case !k.playable(p):
			return fmt.Errorf("kind %s cannot be played by this world (it needs a redis-server or gateway replicas it does not have)", name)
		}
	}
	return nil
}

// Schedule is one drawn fault schedule.
type Schedule struct {
	// Index is the schedule's position in its campaign; Seed its own seed (derived from the
	// campaign's seed and Index), which also seeds the users' random choices.
	Index int    `json:"index"`
	Seed  uint64 `json:"seed"`
	// OutboxMax, when > 0, bounds the gateway's outbox (its outboxMax) for the whole run.
	OutboxMax int `json:"outbox_max,omitempty"`
	// Faults are the schedule's faults, in the order they begin.
	Faults []scenario.Fault `json:"faults"`
}

// ScheduleSeed derives schedule i's seed from a campaign seed (SplitMix64 of both), so any one
// schedule can be drawn again alone.
func ScheduleSeed(campaign uint64, i int) uint64 {
	z := campaign*0x9e3779b97f4a7c15 + uint64(i+1)*0xbf58476d1ce4e5b9
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Draw draws k schedules from the campaign seed. The same seed and parameters give the same
// schedules on every machine.
func Draw(seed uint64, k int, p Params) []Schedule {
	out := make([]Schedule, k)
	for i := range k {
		out[i] = DrawOne(ScheduleSeed(seed, i), i, p)
	}
	return out
}

// kind is one entry of the fault vocabulary: its name, whether the world can play it, and how
// to draw one (the fault's time is placed by the caller).
type kind struct {
	name string
	// needsRedis: only with a real redis-server; needsReplicas: only with gateway.replicas > 1
	// (cluster mode).
	needsRedis, needsReplicas bool
	// oneGateway: only with one gateway (gateway.replicas 1).
	oneGateway bool
	// generation is when the kind joined the vocabulary (see vocabulary); 0 for the first ones.
	generation int
	draw       func(d *drawer) scenario.Fault
}

// playable reports whether a world with parameters p can play faults of kind k.
func (k kind) playable(p Params) bool {
	return (p.RealRedis || !k.needsRedis) && (p.Replicas > 1 || !k.needsReplicas) && (p.Replicas <= 1 || !k.oneGateway)
}

// vocabulary is every fault kind a campaign draws from, in a fixed order (the draw depends on it).
// Kinds added later carry a generation above 0 and go at the end: the first generation's faults
// are drawn as they always were, from the schedule's own stream, and each later generation adds
// its faults from a stream of its own (drawer.drawLater), so every schedule of every seed keeps
// the faults it drew before a generation was added (a replay with -only plays them still) and
// may gain some of the new kinds, within MaxFaults.
var vocabulary = []kind{
	{name: "laravel-5xx", draw: func(d *drawer) scenario.Fault {
		st := pick(d.rng, []int{500, 502, 503, 504})
		f := &scenario.LaravelFaults{ErrorRate: pick(d.rng, []float64{0.5, 1}), ErrorStatus: st}
		if st == 503 {
			f.RetryAfter = pick(d.rng, []scenario.Duration{0, sec(1), sec(3600)})
		}
		return scenario.Fault{Duration: d.span(2, 8), Laravel: f}
	}},
	{name: "laravel-4xx", draw: func(d *drawer) scenario.Fault {
		st := pick(d.rng, []int{401, 403, 404, 405, 408, 410, 421})
		return scenario.Fault{Duration: d.span(2, 6), Laravel: &scenario.LaravelFaults{ErrorRate: 1, ErrorStatus: st}}
	}},
	{name: "laravel-429", draw: func(d *drawer) scenario.Fault {
		return scenario.Fault{Duration: d.span(2, 8), Laravel: &scenario.LaravelFaults{ErrorRate: pick(d.rng, []float64{0.3, 1}), ErrorStatus: 429,
			RetryAfter: pick(d.rng, []scenario.Duration{sec(1), sec(5), sec(3600), sec(24 * 3600)})}}
	}},
	{name: "laravel-3xx", draw: func(d *drawer) scenario.Fault {
		return scenario.Fault{Duration: d.span(2, 6), Laravel: &scenario.LaravelFaults{ErrorRate: 1,
			ErrorStatus: pick(d.rng, []int{301, 302, 307, 308}), RedirectTo: RedirectTarget}}
	}},
	{name: "laravel-bad-body", draw: func(d *drawer) scenario.Fault {
		return scenario.Fault{Duration: d.span(2, 8), Laravel: &scenario.LaravelFaults{BadBodyRate: pick(d.rng, []float64{0.3, 1})}}
	}},
	{name: "laravel-unaccounted", draw: func(d *drawer) scenario.Fault {
		return scenario.Fault{Duration: d.span(2, 8), Laravel: &scenario.LaravelFaults{UnaccountedRate: pick(d.rng, []float64{0.3, 1})}}
	}},
	{name: "laravel-refuse", draw: func(d *drawer) scenario.Fault {
		n := 1 + d.rng.IntN(3)
		var ids []string
		for _, i := range d.rng.Perm(d.p.Sessions)[:min(n, d.p.Sessions)] {
			ids = append(ids, fmt.Sprintf("%s%d", d.p.SessionPrefix, i))
		}
		sort.Strings(ids)
		return scenario.Fault{Duration: d.span(3, 10), Laravel: &scenario.LaravelFaults{RefuseSessions: ids}}
	}},
	{name: "laravel-slow", draw: func(d *drawer) scenario.Fault {
		lat := scenario.Duration(time.Duration(200+d.rng.IntN(2800)) * time.Millisecond / (100 * time.Millisecond) * (100 * time.Millisecond))
		return scenario.Fault{Duration: d.span(3, 10), Laravel: &scenario.LaravelFaults{ExtraLatency: lat}}
	}},
	{name: "laravel-down", draw: func(d *drawer) scenario.Fault {
		return scenario.Fault{Duration: d.span(2, 10), Laravel: &scenario.LaravelFaults{Down: true}}
	}},
	{name: "laravel-lost-responses", draw: func(d *drawer) scenario.Fault {
		return scenario.Fault{Duration: d.span(3, 10), Laravel: &scenario.LaravelFaults{LostResponseRate: pick(d.rng, []float64{0.3, 0.7})}}
	}},
	{name: "redis-restart", needsRedis: true, draw: func(d *drawer) scenario.Fault {
		return process(scenario.ProcessRedisRestart, d.span(0, 3))
	}},
	{name: "redis-lose", needsRedis: true, draw: func(d *drawer) scenario.Fault {
		return process(scenario.ProcessRedisLose, d.span(0, 2))
	}},
	{name: "redis-pause", needsRedis: true, draw: func(d *drawer) scenario.Fault {
		return process(scenario.ProcessRedisPause, d.span(1, 6))
	}},
	{name: "redis-evict", needsRedis: true, draw: func(d *drawer) scenario.Fault {
		return process(scenario.ProcessRedisEvict, d.span(3, 8))
	}},
	{name: "gateway-kill", needsRedis: true, draw: func(d *drawer) scenario.Fault {
		return process(scenario.ProcessGatewayKill, d.span(0, 3))
	}},
	{name: "gateway-term-in-failure", needsRedis: true, draw: nil}, // drawn as a pair by drawer.termInFailure
	{name: "gateway-pause", draw: func(d *drawer) scenario.Fault {
		return process(scenario.ProcessGatewayPause, d.span(1, 6))
	}},
	{name: "whatsapp-drop", draw: func(d *drawer) scenario.Fault { return d.wave("drop", 0.2, 1) }},
	{name: "whatsapp-replace", draw: func(d *drawer) scenario.Fault { return d.wave("replace", 0.1, 0.5) }},
	{name: "whatsapp-logout", draw: func(d *drawer) scenario.Fault { return d.wave("logout", 0.1, 0.5) }},
	{name: "whatsapp-restart", draw: func(d *drawer) scenario.Fault {
		return scenario.Fault{WhatsApp: &scenario.WhatsAppFault{Action: "restart"}}
	}},
	// Cluster mode (gateway.replicas > 1): one replica's crash (its shards taken over when its
	// lease ends, then given back when it returns), a replica frozen past its lease (it must fence
	// itself on resume), a rolling restart (every replica hands over at SIGTERM).
	{name: "replica-kill", needsRedis: true, needsReplicas: true, draw: func(d *drawer) scenario.Fault {
		f := process(scenario.ProcessGatewayKill, d.span(0, 5))
		f.Process.Replica = d.rng.IntN(d.p.Replicas)
		return f
	}},
	{name: "replica-pause-past-lease", needsRedis: true, needsReplicas: true, draw: func(d *drawer) scenario.Fault {
		f := process(scenario.ProcessGatewayPause, d.span(12, 16))
		f.Process.Replica = d.rng.IntN(d.p.Replicas)
		return f
	}},
	{name: "replica-rolling-restart", needsRedis: true, needsReplicas: true, draw: func(d *drawer) scenario.Fault {
		return process(scenario.ProcessGatewayRollingRestart, d.span(0, 2))
	}},
	// Generation 1 (issue 19's guarantees fixed after the campaign began): Redis restarted from
	// its AOF, losing its last second of writes, while no gateway runs (the next start must
	// notice: 7256dfb); WhatsApp unreachable for some or all devices, so reconnects fail and back
	// off (aa07870, d26aa46).
	{name: "redis-restart-while-gateway-down", needsRedis: true, oneGateway: true, generation: 1, draw: func(d *drawer) scenario.Fault {
		return process(scenario.ProcessRedisRestartGatewayDown, d.span(0, 3))
	}},
	{name: "whatsapp-down", generation: 1, draw: func(d *drawer) scenario.Fault {
		share := pick(d.rng, []float64{0.3, 0.6, 1})
		return scenario.Fault{Duration: d.span(2, 8), WhatsApp: &scenario.WhatsAppFault{Action: "down", Share: &share}}
	}},
	// Generation 2: WhatsApp silent for some or all devices (a frozen server, a half-open TCP
	// path): nothing closed, nothing answered, noticed only through whatsmeow's keepalive, which
	// the schedule's gateway runs shortened (SilenceKeepalive): 4 to 12 s of silence against a
	// keepalive that gives up after about 5 s, so some pass unnoticed and some drop and reconnect.
	{name: "whatsapp-silent", generation: 2, draw: func(d *drawer) scenario.Fault {
		share := pick(d.rng, []float64{0.3, 0.6, 1})
		return scenario.Fault{Duration: d.span(4, 12), WhatsApp: &scenario.WhatsAppFault{Action: "silent", Share: &share}}
	}},
	// Generation 3: WhatsApp's front closing every new connection in the middle of the Noise
	// handshake for 2-6 s (accepted, closed after the client's hello, before the server's), a
	// share of the sessions dropped into it at its start. whatsmeow's handshake waits 20 s for a
	// hello that never comes unless the gateway watches the socket (seed 1 schedule 19 at
	// 2a41874, where an outage's start still closed handshakes; outages no longer do).
	{name: "whatsapp-handshake-cut", generation: 3, draw: func(d *drawer) scenario.Fault {
		share := pick(d.rng, []float64{0.3, 0.6, 1})
		return scenario.Fault{Duration: d.span(2, 6), WhatsApp: &scenario.WhatsAppFault{Action: "handshake-cut", Share: &share}}
	}},
}

// SilenceKeepalive is the test-only keepalive interval (the gateway's waTestKeepalive) of a
// schedule that draws whatsapp-silent: whatsmeow then pings every 0.5-0.75 s and gives up after
// 4.5 s unanswered (whatsapp.ScaledKeepaliveTiming), instead of its 3 minutes.
const SilenceKeepalive = 500 * time.Millisecond

// Silent reports whether the schedule plays a WhatsApp silence (its gateway then runs with
// SilenceKeepalive).
func (s Schedule) Silent() bool {
	return slices.ContainsFunc(s.Faults, func(f scenario.Fault) bool { return f.WhatsApp != nil && f.WhatsApp.Action == "silent" })
}

// kindNamed finds a kind of the vocabulary by name.
func kindNamed(name string) (kind, bool) {
	for _, k := range vocabulary {
		if k.name == name {
			return k, true
		}
	}
	return kind{}, false
}

// allKinds names every kind of the vocabulary.
func allKinds() []string {
	out := make([]string, len(vocabulary))
	for i, k := range vocabulary {
		out[i] = k.name
	}
	return out
}

// KindsOf lists the vocabulary's kinds a world with parameters p can play (those of p.Kinds
// when set).
func KindsOf(p Params) []string {
	var out []string
	for _, k := range vocabulary {
		if k.playable(p) && (len(p.Kinds) == 0 || slices.Contains(p.Kinds, k.name)) {
			out = append(out, k.name)
		}
	}
	return out
}

// Kinds lists the vocabulary's kinds one gateway can play (all of them with a real redis-server).
func Kinds(realRedis bool) []string {
	var out []string
	for _, k := range vocabulary {
		if k.playable(Params{RealRedis: realRedis, Replicas: 1}) {
			out = append(out, k.name)
		}
	}
	return out
}

// outboxBounds are the tiny outbox bounds a schedule may run with (drawn with outboxShare).
var outboxBounds = []int{5, 20}

const outboxShare = 0.15

// drawer draws one schedule.
type drawer struct {
	rng *rand.Rand
	p   Params
	// busy are the windows of the faults placed so far by target (see targets).
	busy map[string][][2]time.Duration
}

// targets are what a fault acts on, where faults must not overlap: fakelaravel holds one set of
// faults; a process is killed, paused or pressed by one fault at a time, whose heal must not undo
// another's; and a gateway restart must not meet Redis's evicting policy of a redis-evict fault
// (the gateway rightly refuses to start on it: a finding of seed 9, schedule 4, by design).
func targets(f scenario.Fault) []string {
	switch {
	case f.Laravel != nil:
		return []string{"laravel"}
	case f.WhatsApp != nil && f.WhatsApp.Action == "down":
		return []string{"whatsapp-outage"} // the heal of one outage would end another
	case f.WhatsApp != nil && f.WhatsApp.Action == "silent":
		return []string{"whatsapp-silence"} // the heal of one silence would end another
	case f.WhatsApp != nil && f.WhatsApp.Action == "handshake-cut":
		return []string{"whatsapp-handshakes"} // a later cut replaces an earlier one's end
	case f.Process == nil:
		return nil
	case f.Process.Action == scenario.ProcessRedisRestartGatewayDown:
		return []string{"redis", "gateway", "evicting"}
	case f.Process.Action == scenario.ProcessRedisEvict:
		return []string{"redis", "evicting"}
	case f.Process.OnRedis():
		return []string{"redis"}
	case f.Process.Action == scenario.ProcessGatewayKill || f.Process.Action == scenario.ProcessGatewayTerm:
		return []string{"gateway", "evicting"}
	case strings.HasPrefix(f.Process.Action, "gateway-"):
		return []string{"gateway"}
	}
	return nil
}

// span draws a duration from lo to hi seconds, in steps of 500 ms.
func (d *drawer) span(lo, hi int) scenario.Duration {
	steps := (hi - lo) * 2
	return scenario.Duration(time.Duration(lo)*time.Second + time.Duration(d.rng.IntN(steps+1))*500*time.Millisecond)
}

// wave draws a WhatsApp event on a share of the online sessions, spread over up to 3 s.
func (d *drawer) wave(action string, lo, hi float64) scenario.Fault {
	share := lo + float64(d.rng.IntN(int((hi-lo)*10)+1))/10
	return scenario.Fault{WhatsApp: &scenario.WhatsAppFault{Action: action, Share: &share, Spread: d.span(0, 3)}}
}

// place sets a fault's start so that it heals by the end of the window, where no other fault on
// its target is. It reports false when there is no room.
func (d *drawer) place(f *scenario.Fault) bool {
	length := f.Duration.Std() + f.WhatsAppSpread()
	room := d.p.End - d.p.Start - length
	if room < 0 {
		return false
	}
	for range 20 {
		at := d.p.Start + time.Duration(d.rng.Int64N(int64(room/(500*time.Millisecond))+1))*500*time.Millisecond
		if d.overlaps(targets(*f), at, at+length) {
			continue
		}
		f.At = scenario.Duration(at)
		d.occupy(targets(*f), at, at+length)
		return true
	}
	return false
}

// occupy marks targets busy from..to.
func (d *drawer) occupy(targets []string, from, to time.Duration) {
	for _, t := range targets {
		d.busy[t] = append(d.busy[t], [2]time.Duration{from, to})
	}
}

// overlaps reports whether a fault on targets from..to would overlap one already placed.
func (d *drawer) overlaps(targets []string, from, to time.Duration) bool {
	for _, t := range targets {
		for _, w := range d.busy[t] {
			// a second of separation: the heal of one must not race the start of the next
			if from < w[1]+time.Second && w[0] < to+time.Second {
				return true
			}
		}
	}
	return false
}

// termInFailure draws a Laravel failure window and a SIGTERM to the gateway in its middle, so
// that the shutdown's final flush meets the failure.
func (d *drawer) termInFailure() []scenario.Fault {
	st := pick(d.rng, []int{500, 503, 401, 404})
	fail := scenario.Fault{Duration: d.span(6, 10), Laravel: &scenario.LaravelFaults{ErrorRate: 1, ErrorStatus: st}}
	if !d.place(&fail) {
		return nil
	}
	term := process(scenario.ProcessGatewayTerm, d.span(0, 2))
	term.At = fail.At + scenario.Duration((fail.Duration.Std() / 3).Round(500*time.Millisecond))
	// the SIGTERM waits up to 30 s for a request in flight; the gateway is busy until its heal
	if d.overlaps(targets(term), term.At.Std(), term.At.Std()+term.Duration.Std()) {
		return []scenario.Fault{fail}
	}
	d.occupy(targets(term), term.At.Std(), term.At.Std()+term.Duration.Std())
	return []scenario.Fault{fail, term}
}

// maxGeneration is the vocabulary's latest generation.
func maxGeneration() int {
	g := 0
	for _, k := range vocabulary {
		g = max(g, k.generation)
	}
	return g
}

// drawLater draws the faults of generation g's kinds for a schedule that drew want faults and
// holds has, from a stream of the generation's own (the schedule's seed and g), so the faults of
// earlier generations stay as they were drawn. Each of the schedule's want draws is one of g's
// kinds with their share of the kinds playable up to g, within MaxFaults.
func (d *drawer) drawLater(seed uint64, g, want, has int) []scenario.Fault {
	var later []kind
	upTo := 0
	for _, k := range vocabulary {
		if !k.playable(d.p) || k.generation > g {
			continue
		}
		upTo++
		if k.generation == g {
			later = append(later, k)
		}
	}
	if len(later) == 0 {
		return nil
	}
	d.rng = rand.New(rand.NewPCG(seed^uint64(g)*0x9e3779b97f4a7c15, seed+uint64(g)))
	var out []scenario.Fault
	for range want {
		if d.rng.IntN(upTo) >= len(later) || has+len(out) >= d.p.MaxFaults {
			continue
		}
		f := later[d.rng.IntN(len(later))].draw(d)
		if d.place(&f) {
			out = append(out, f)
		}
	}
	return out
}

// DrawOne draws the schedule of one seed.
func DrawOne(seed uint64, index int, p Params) Schedule {
	return drawOne(seed, index, p, maxGeneration())
}

// drawOne draws the schedule of one seed from the vocabulary's generations up to upTo.
func drawOne(seed uint64, index int, p Params, upTo int) Schedule {
	d := &drawer{rng: rand.New(rand.NewPCG(seed, seed^0x5ca1ab1e)), p: p, busy: map[string][][2]time.Duration{}}
	var kinds []kind
	for _, k := range vocabulary {
		if !k.playable(p) {
			continue
		}
		// A restricted draw takes its kinds alike from every generation; else the first
		// generation is drawn here and the later ones by drawLater.
		if len(p.Kinds) > 0 && slices.Contains(p.Kinds, k.name) || len(p.Kinds) == 0 && k.generation == 0 {
			kinds = append(kinds, k)
		}
	}
	s := Schedule{Index: index, Seed: seed}
	if d.rng.Float64() < outboxShare {
		s.OutboxMax = pick(d.rng, outboxBounds)
	}
	want := 1 + d.rng.IntN(max(p.MaxFaults, 1))
	for tries := 0; len(kinds) > 0 && len(s.Faults) < want && tries < 4*want; tries++ {
		k := kinds[d.rng.IntN(len(kinds))]
		var drawn []scenario.Fault
		if k.draw == nil {
			if len(s.Faults)+2 > want {
				continue
			}
			drawn = d.termInFailure()
		} else {
			f := k.draw(d)
			if d.place(&f) {
				drawn = []scenario.Fault{f}
			}
		}
		s.Faults = append(s.Faults, drawn...)
	}
	if len(p.Kinds) == 0 {
		for g := 1; g <= upTo; g++ {
			s.Faults = append(s.Faults, d.drawLater(seed, g, want, len(s.Faults))...)
		}
	}
	slices.SortStableFunc(s.Faults, func(a, b scenario.Fault) int { return int(a.At - b.At) })
	named := map[string]int{}
	for i := range s.Faults {
		n := describeKind(s.Faults[i])
		named[n]++
		s.Faults[i].Name = fmt.Sprintf("%s-%d", n, named[n])
	}
	return s
}

// describeKind names a drawn fault by its vocabulary kind.
func describeKind(f scenario.Fault) string {
	switch {
	case f.WhatsApp != nil:
		return "whatsapp-" + f.WhatsApp.Action
	case f.Process != nil:
		return f.Process.Action
	}
	l := f.Laravel
	switch {
	case l.Down:
		return "laravel-down"
	case len(l.RefuseSessions) > 0:
		return "laravel-refuse"
	case l.BadBodyRate > 0:
		return "laravel-bad-body"
	case l.UnaccountedRate > 0:
		return "laravel-unaccounted"
	case l.LostResponseRate > 0:
		return "laravel-lost-responses"
	case l.ExtraLatency > 0:
		return "laravel-slow"
	case l.ErrorStatus != 0:
		return fmt.Sprintf("laravel-%d", l.ErrorStatus)
	}
	return "laravel"
}

// Describe renders one fault on one line, e.g. "12.5s +4s laravel 429 x100% Retry-After 1h0m0s".
func Describe(f scenario.Fault) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s +%s ", f.At, f.Duration)
	switch {
	case f.WhatsApp != nil:
		fmt.Fprintf(&b, "whatsapp %s", f.WhatsApp.Action)
		if f.WhatsApp.Share != nil {
			fmt.Fprintf(&b, " share %.1f", *f.WhatsApp.Share)
		}
		if f.WhatsApp.Spread > 0 {
			fmt.Fprintf(&b, " spread %s", f.WhatsApp.Spread)
		}
	case f.Process != nil:
		b.WriteString(f.Process.Action)
		if f.Process.Replica > 0 {
			fmt.Fprintf(&b, " replica %d", f.Process.Replica)
		}
	default:
		l := f.Laravel
		b.WriteString("laravel")
		if l.ErrorStatus != 0 {
			fmt.Fprintf(&b, " %d x%g%%", l.ErrorStatus, l.ErrorRate*100)
		}
		if l.RetryAfter > 0 {
			fmt.Fprintf(&b, " Retry-After %s", l.RetryAfter)
		}
		if l.RedirectTo != "" {
			fmt.Fprintf(&b, " to %s", l.RedirectTo)
		}
		if l.Down {
			b.WriteString(" down")
		}
		if l.ExtraLatency > 0 {
			fmt.Fprintf(&b, " +%s latency", l.ExtraLatency)
		}
		if l.LostResponseRate > 0 {
			fmt.Fprintf(&b, " lost responses x%g%%", l.LostResponseRate*100)
		}
		if l.BadBodyRate > 0 {
			fmt.Fprintf(&b, " undecodable 2xx x%g%%", l.BadBodyRate*100)
		}
		if l.UnaccountedRate > 0 {
			fmt.Fprintf(&b, " unaccounted failures x%g%%", l.UnaccountedRate*100)
		}
		if len(l.RefuseSessions) > 0 {
			fmt.Fprintf(&b, " refuses items of %s", strings.Join(l.RefuseSessions, ","))
		}
	}
	return b.String()
}

// String renders the schedule, one fault per line, as the campaign prints it.
func (s Schedule) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "schedule %d (seed %d)", s.Index, s.Seed)
	if s.OutboxMax > 0 {
		fmt.Fprintf(&b, ", outbox bound %d", s.OutboxMax)
	}
	b.WriteString(":\n")
	for _, f := range s.Faults {
		fmt.Fprintf(&b, "  %-28s %s\n", f.Name, Describe(f))
	}
	return b.String()
}

// RefusedSessions are the sessions whose items the schedule makes Laravel refuse item by item:
// the only sessions that may have dead letters.
func (s Schedule) RefusedSessions() []string {
	var out []string
	for _, f := range s.Faults {
		if f.Laravel != nil {
			out = append(out, f.Laravel.RefuseSessions...)
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// LastHeal is when the schedule's last fault is due to heal (since the users start).
func (s Schedule) LastHeal() time.Duration {
	var end time.Duration
	for _, f := range s.Faults {
		end = max(end, f.At.Std()+f.Duration.Std()+f.WhatsAppSpread())
	}
	return end
}

func process(action string, d scenario.Duration) scenario.Fault {
	return scenario.Fault{Duration: d, Process: &scenario.ProcessFault{Action: action}}
}

func sec(s int) scenario.Duration { return scenario.Duration(time.Duration(s) * time.Second) }

func pick[T any](rng *rand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }
