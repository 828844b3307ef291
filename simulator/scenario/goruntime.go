package scenario

// The Go runtime settings a scenario gives the gateway processes it starts (gateway.gogc,
// gateway.gomemlimit, gateway.gomaxprocs): docs/deploy.md recommends GOGC=50 for thousands of
// sessions per process, and a scale entry measures the gateway as it would be deployed.

import (
	"fmt"
	"strconv"
	"strings"
)

// GoRuntime is the gateway's Go runtime environment a scenario sets; empty fields leave Go's
// defaults (GOGC=100, no memory limit).
type GoRuntime struct {
	// GOGC is the GC target percentage ("50") or "off".
	GOGC string `yaml:"gogc"`
	// GOMEMLIMIT is the soft memory limit in Go's syntax ("3GiB", "512MiB", "1000000000") or "off".
	GOMEMLIMIT string `yaml:"gomemlimit"`
	// GOMAXPROCS is how many threads run Go code at once ("2"). Unset, Go uses the CPUs the
	// process may run on: 1 when the run pins the gateway to one core, so a goroutine that became
	// runnable waits for the running one to block or to be preempted (every 10 ms); with 2 on one
	// core the kernel time-slices the two threads instead.
	GOMAXPROCS string `yaml:"gomaxprocs"`
}

// Env is the runtime's part of a gateway process's environment (KEY=VALUE), in a fixed order.
func (g GoRuntime) Env() []string {
	var env []string
	if g.GOGC != "" {
		env = append(env, "GOGC="+g.GOGC)
	}
	if g.GOMEMLIMIT != "" {
		env = append(env, "GOMEMLIMIT="+g.GOMEMLIMIT)
	}
	if g.GOMAXPROCS != "" {
		env = append(env, "GOMAXPROCS="+g.GOMAXPROCS)
	}
	return env
}

// validGOGC accepts what the Go runtime reads from GOGC without falling back to its default: a
// positive percentage or off (0 would collect continuously; a negative one means off to Go,
// which a scenario says as off).
func validGOGC(v string) error {
	if v == "" || v == "off" {
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return fmt.Errorf("%q: use a GC target percentage of at least 1 (Go's default is 100; docs/deploy.md recommends 50 for thousands of sessions per process) or off", v)
	}
	return nil
}

// goMemLimitUnits are the suffixes the Go runtime accepts in GOMEMLIMIT.
var goMemLimitUnits = []string{"TiB", "GiB", "MiB", "KiB", "B"}

// validGOMEMLIMIT accepts what the Go runtime reads from GOMEMLIMIT: off, or a non-negative
// whole number of bytes with an optional B, KiB, MiB, GiB or TiB suffix (the runtime exits at
// start on anything else).
func validGOMEMLIMIT(v string) error {
	if v == "" || v == "off" {
		return nil
	}
	num := v
	for _, u := range goMemLimitUnits {
		if strings.HasSuffix(v, u) {
			num = strings.TrimSuffix(v, u)
			break
		}
	}
	if n, err := strconv.ParseUint(num, 10, 63); err != nil || num == "" || n == 0 {
		return fmt.Errorf("%q: use a memory limit such as 3GiB, 512MiB or a number of bytes (suffixes B, KiB, MiB, GiB, TiB) or off", v)
	}
	return nil
}

// maxGOMAXPROCS bounds gateway.gomaxprocs: more threads than this on the gateway's few cores only
// adds switching.
const maxGOMAXPROCS = 64

// validGOMAXPROCS accepts a whole number of threads from 1 to maxGOMAXPROCS (the runtime ignores
// anything else and silently keeps its default).
func validGOMAXPROCS(v string) error {
	if v == "" {
		return nil
	}
	if n, err := strconv.Atoi(v); err != nil || n < 1 || n > maxGOMAXPROCS {
		return fmt.Errorf("%q: use a whole number of threads from 1 to %d (unset: the CPUs the gateway may run on)", v, maxGOMAXPROCS)
	}
	return nil
}
