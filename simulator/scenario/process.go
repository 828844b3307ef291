package scenario

import "fmt"

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
)

// ProcessFault is a fault on a process the simulator started: the gateway or redis-server. The
// fault's duration is the downtime before the process is started again (default 0: at once), or
// for hostile-clients the length of the flood.
type ProcessFault struct {
	// Action is gateway-kill, gateway-term, redis-restart, redis-lose or hostile-clients.
	Action string `yaml:"action"`
}

// validate checks the action (nil is valid: no process fault).
func (p *ProcessFault) validate() error {
	if p == nil {
		return nil
	}
	switch p.Action {
	case ProcessGatewayKill, ProcessGatewayTerm, ProcessRedisRestart, ProcessRedisLose, ProcessHostileClients:
		return nil
	}
	return fmt.Errorf("%q is not a process action; use %s, %s, %s, %s or %s", p.Action,
		ProcessGatewayKill, ProcessGatewayTerm, ProcessRedisRestart, ProcessRedisLose, ProcessHostileClients)
}

// OnRedis reports whether the action acts on redis-server.
func (p *ProcessFault) OnRedis() bool {
	return p != nil && (p.Action == ProcessRedisRestart || p.Action == ProcessRedisLose)
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
