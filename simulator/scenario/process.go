package scenario

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Process fault actions: what the simulator does to the processes it started.
const (
	// ProcessGatewayKill sends SIGKILL to the gateway and starts it again (same settings, same
	// stores) after the fault's duration.
	ProcessGatewayKill = "gateway-kill"
	// ProcessGatewayTerm sends SIGTERM to the gateway while a batch is on its way to Laravel
	// (waiting up to 30 s for one), waits for it to exit, and starts it again after the fault's
	// duration.
	ProcessGatewayTerm = "gateway-term"
	// ProcessRedisRestart kills redis-server (SIGKILL) and starts it again on the same port and
	// data folder after the fault's duration; the simulator turns AOF on at the start of the run
	// (appendfsync everysec), so the data survives.
	ProcessRedisRestart = "redis-restart"
	// ProcessRedisLose kills redis-server, deletes its data and starts an empty one on the same
	// port after the fault's duration: everything Redis held is gone.
	ProcessRedisLose = "redis-lose"
	// ProcessHostileClients floods the gateway's API for the fault's duration with malformed,
	// oversized, unauthenticated and slowloris requests (bounded: about 400 requests/s and 200
	// slow connections), then measures the gateway's goroutine growth once the flood is over.
	ProcessHostileClients = "hostile-clients"
	// ProcessGatewayPause stops the gateway with SIGSTOP for the fault's duration, then SIGCONT: a
	// stop-the-world pause (a long GC pause, a frozen VM) with its connections left open.
	ProcessGatewayPause = "gateway-pause"
	// ProcessRedisPause stops redis-server with SIGSTOP for the fault's duration, then SIGCONT.
	ProcessRedisPause = "redis-pause"
	// ProcessRedisEvict puts redis-server under memory pressure for the fault's duration: maxmemory
	// just above its use, an evicting policy (allkeys-lru) and filler writes; then the old settings
	// come back. What the gateway kept in Redis may be evicted.
	ProcessRedisEvict = "redis-evict"
	// ProcessGatewayRollingRestart restarts every gateway replica in turn, as a rolling update
	// does: SIGTERM to one (it hands its shards over), wait for it to exit, start it again with
	// the same id, address and stores, wait until it serves and the fault's duration (the pause
	// between two replicas), then the next.
	ProcessGatewayRollingRestart = "gateway-rolling-restart"
	// ProcessRedisRestartGatewayDown restarts redis-server from its AOF, losing its last second
	// of writes, while no gateway runs: AOF turned off (the writes from then on are lost), a
	// second later the gateway SIGKILLed, then redis-server SIGKILLed and started again from the
	// AOF at once, and the gateway started again after the fault's duration. One gateway only
	// (gateway.replicas 1).
	ProcessRedisRestartGatewayDown = "redis-restart-while-gateway-down"
)

// ProcessActions lists every process action.
var ProcessActions = []string{ProcessGatewayKill, ProcessGatewayTerm, ProcessGatewayPause,
	ProcessRedisRestart, ProcessRedisLose, ProcessRedisPause, ProcessRedisEvict, ProcessHostileClients,
	ProcessGatewayRollingRestart, ProcessRedisRestartGatewayDown}

// ProcessFault is a fault on a process the simulator started: the gateway or redis-server. The
// fault's duration is the downtime before the process is started again (default 0: at once), the
// length of a pause or of memory pressure, or for hostile-clients the length of the flood.
type ProcessFault struct {
	// Action is one of ProcessActions.
	Action string `yaml:"action"`
	// Replica is the gateway replica a gateway-kill, gateway-term or gateway-pause acts on, from
	// 0 (gateway.replicas > 1; default 0, the first).
	Replica int `yaml:"replica"`
}

// validate checks the action against the number of gateway replicas (nil is valid: no process
// fault); key is the field a refusal is about (action or replica).
func (p *ProcessFault) validate(replicas int) (key string, err error) {
	if p == nil {
		return "", nil
	}
	if !slices.Contains(ProcessActions, p.Action) {
		return "action", fmt.Errorf("%q is not a process action; use one of %s", p.Action, strings.Join(ProcessActions, ", "))
	}
	replicas = max(replicas, 1)
	switch {
	case p.Action == ProcessGatewayRollingRestart && replicas < 2:
		return "action", fmt.Errorf("%s needs gateway.replicas of 2 or more (one gateway: use %s)", p.Action, ProcessGatewayTerm)
	case p.Action == ProcessRedisRestartGatewayDown && replicas > 1:
		return "action", fmt.Errorf("%s needs one gateway (gateway.replicas 1)", p.Action)
	case p.Replica != 0 && !p.OnReplica():
		return "replica", fmt.Errorf("only %s, %s and %s act on one replica", ProcessGatewayKill, ProcessGatewayTerm, ProcessGatewayPause)
	case p.Replica < 0 || p.Replica >= replicas:
		return "replica", fmt.Errorf("%d is not one of the %d gateway replicas (0 to %d)", p.Replica, replicas, replicas-1)
	}
	return "", nil
}

// OnReplica reports whether the action acts on one gateway process (Replica says which).
func (p *ProcessFault) OnReplica() bool {
	return p != nil && (p.Action == ProcessGatewayKill || p.Action == ProcessGatewayTerm || p.Action == ProcessGatewayPause)
}

// OnRedis reports whether the action acts on redis-server.
func (p *ProcessFault) OnRedis() bool {
	return p != nil && strings.HasPrefix(p.Action, "redis-")
}

// WhatsAppSpread is the spread of a WhatsApp wave (0 for other faults).
func (flt Fault) WhatsAppSpread() time.Duration {
	if flt.WhatsApp == nil {
		return 0
	}
	return flt.WhatsApp.Spread.Std()
}

// faultKinds counts the kinds of fault an entry gives (laravel, whatsapp, process).
func (flt *Fault) faultKinds() int {
	n := 0
	if flt.Laravel != nil {
		n++
	}
	if flt.WhatsApp != nil {
		n++
	}
	if flt.Process != nil {
		n++
	}
	return n
}
