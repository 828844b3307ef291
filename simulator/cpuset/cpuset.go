// Package cpuset decides which CPUs the processes of a simulator run may use: the gateway on its
// own CPU set and everything else (the simulator's users and in-process fakewa, fakelaravel, a
// redis-server the simulator started) on the rest, so that the gateway's figures do not move with
// the load generator's work. Its decisions are pure functions of the scenario's `cpus` settings
// and the machine's CPUs; simulator/run applies them with sched_setaffinity.
package cpuset

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ErrCPUs reports a `cpus` setting that cannot be applied on this machine.
var ErrCPUs = errors.New("cpus")

// Auto asks for the default split: with two or more CPUs the gateway gets the last one and the
// world the others; with one CPU nothing is pinned (and the report says so).
const Auto = "auto"

// Off turns pinning off explicitly.
const Off = "off"

// Assignment is the resolved split of the machine's CPUs.
type Assignment struct {
	// Pinned says whether the processes are pinned at all.
	Pinned bool
	// Gateway and World are the CPU ids of the two sets (empty when not pinned).
	Gateway, World []int
	// Note says why nothing is pinned, for the report ("not requested", "one core: ...").
	Note string
	// ServersNice is how many nice steps below the simulator's priority the world's servers run
	// (ResolveNice; 0: at the simulator's).
	ServersNice int
}

// Parse reads a CPU list in the kernel's notation ("1", "0-2,5"), sorted and without repeats.
func Parse(s string) ([]int, error) {
	var ids []int
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			return nil, fmt.Errorf("%w: %q is not a CPU list; write CPU ids like \"1\" or \"0-2,5\"", ErrCPUs, s)
		}
		lo, hi, isRange := strings.Cut(part, "-")
		first, err1 := strconv.Atoi(strings.TrimSpace(lo))
		last, err2 := first, error(nil)
		if isRange {
			last, err2 = strconv.Atoi(strings.TrimSpace(hi))
		}
		if err1 != nil || err2 != nil || first < 0 || last < first {
			return nil, fmt.Errorf("%w: %q in %q is not a CPU id or a range like 0-2", ErrCPUs, part, s)
		}
		for id := first; id <= last; id++ {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

// Format writes ids in the kernel's notation, ranges collapsed: [0 1 2 5] -> "0-2,5".
func Format(ids []int) string {
	var parts []string
	for i := 0; i < len(ids); {
		j := i
		for j+1 < len(ids) && ids[j+1] == ids[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, strconv.Itoa(ids[i]))
		} else {
			parts = append(parts, strconv.Itoa(ids[i])+"-"+strconv.Itoa(ids[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// Resolve turns the scenario's `cpus: {gateway, world}` into an Assignment on a machine whose
// usable CPUs are online. gateway "" or "off" pins nothing; "auto" splits as Auto says; an
// explicit gateway list with an empty (or "auto") world gives the world every other CPU.
func Resolve(gateway, world string, online []int) (Assignment, error) {
	gateway, world = strings.TrimSpace(gateway), strings.TrimSpace(world)
	switch {
	case gateway == "" || gateway == Off:
		if world != "" && world != Off && world != Auto {
			return Assignment{}, fmt.Errorf("%w: world is set (%q) but gateway is not; give the gateway its CPUs too", ErrCPUs, world)
		}
		return Assignment{Note: "not requested"}, nil
	case gateway == Auto:
		if world != "" && world != Auto {
			return Assignment{}, fmt.Errorf("%w: gateway \"auto\" chooses the world's CPUs too; leave world out or name the gateway's CPUs", ErrCPUs)
		}
		if len(online) < 2 {
			return Assignment{Note: fmt.Sprintf("one core (CPU %s), which the gateway shares with the load generator", Format(online))}, nil
		}
		last := online[len(online)-1]
		return Assignment{Pinned: true, Gateway: []int{last}, World: slices.Clone(online[:len(online)-1])}, nil
	}
	gw, err := parseOnline("gateway", gateway, online)
	if err != nil {
		return Assignment{}, err
	}
	var wd []int
	if world == "" || world == Auto {
		for _, id := range online {
			if !slices.Contains(gw, id) {
				wd = append(wd, id)
			}
		}
		if len(wd) == 0 {
			return Assignment{}, fmt.Errorf("%w: the gateway has every CPU of this machine (%s); leave at least one for the world", ErrCPUs, Format(online))
		}
	} else if wd, err = parseOnline("world", world, online); err != nil {
		return Assignment{}, err
	}
	var shared []int
	for _, id := range gw {
		if slices.Contains(wd, id) {
			shared = append(shared, id)
		}
	}
	if len(shared) > 0 {
		return Assignment{}, fmt.Errorf("%w: gateway (%s) and world (%s) share CPU %s; give each its own CPUs", ErrCPUs, Format(gw), Format(wd), Format(shared))
	}
	return Assignment{Pinned: true, Gateway: gw, World: wd}, nil
}

// parseOnline parses one set and checks that each CPU exists (is usable) on this machine.
func parseOnline(which, s string, online []int) ([]int, error) {
	ids, err := Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", which, err)
	}
	var missing []int
	for _, id := range ids {
		if !slices.Contains(online, id) {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: %s: CPU %s does not exist on this machine, which has CPUs %s", ErrCPUs, which, Format(missing), Format(online))
	}
	return ids, nil
}

// ForProcess is the CPU set a process the simulator starts runs on: the gateway's set for the
// gateway, its replicas and the floor (the bare net/http server it is compared with; see
// IsGatewaySide), the world's for anything else (fakelaravel, redis-server).
func (a Assignment) ForProcess(name string) []int {
	if !a.Pinned {
		return nil
	}
	if IsGatewaySide(name) {
		return a.Gateway
	}
	return a.World
}
