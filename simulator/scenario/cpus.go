package scenario

import (
	"strings"

	"go.yaml.in/yaml/v3"

	"wagate/simulator/cpuset"
)

// CPUs is where the run's processes may run: `cpus: {gateway: "1", world: "0"}`, or
// `cpus: {gateway: auto}` (the last CPU for the gateway, the others for the world, nothing pinned
// on a one-core machine). Unset, nothing is pinned. An external gateway is never pinned. With
// `serversNice` it also says the priority of the world's servers.
type CPUs struct {
	// Gateway is the gateway's CPU list ("1", "2-3"), "auto" or "off".
	Gateway string `yaml:"gateway"`
	// World is the CPU list of everything else; empty means every CPU the gateway does not have.
	World string `yaml:"world"`
	// ServersNice is how many nice steps (0-19) below the simulator's priority the world's
	// servers run: fakewa's child process, fakelaravel, redis-server and PostgreSQL, which stand
	// for remote systems that do not share the client's CPU in production. Unset:
	// cpuset.DefaultServersNice when the run is pinned, 0 (the simulator's priority) when not.
	// The gateway and the simulator keep their priority.
	ServersNice *int `yaml:"serversNice"`

	// Assignment is the split resolved on this machine (set by Load).
	Assignment cpuset.Assignment `yaml:"-"`
}

// onlineCPUs lists the CPUs this process may use; Load checks the scenario's cpus against them.
// Tests replace it.
var onlineCPUs = cpuset.Online

// finishCPUs resolves cpus on this machine: CPU ids that do not exist and overlapping sets are
// the scenario's errors.
func (f *File) finishCPUs(root *yaml.Node, bad *invalid) {
	f.resolveCPUs(root, bad)
	nice, err := cpuset.ResolveNice(f.CPUs.ServersNice, f.CPUs.Assignment.Pinned)
	if err != nil {
		bad.add(f.Path, lineOf(root, "cpus"), "cpus", "%s", strings.TrimPrefix(err.Error(), cpuset.ErrCPUs.Error()+": "))
		return
	}
	f.CPUs.Assignment.ServersNice = nice
}

// resolveCPUs resolves the CPU sets.
func (f *File) resolveCPUs(root *yaml.Node, bad *invalid) {
	if f.CPUs.Gateway == "" && f.CPUs.World == "" {
		f.CPUs.Assignment = cpuset.Assignment{Note: "not requested"}
		return
	}
	online, err := onlineCPUs()
	if err != nil {
		bad.add(f.Path, lineOf(root, "cpus"), "cpus", "can't read this machine's CPUs: %v", err)
		return
	}
	a, err := cpuset.Resolve(f.CPUs.Gateway, f.CPUs.World, online)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), cpuset.ErrCPUs.Error()+": ")
		bad.add(f.Path, lineOf(root, "cpus"), "cpus", "%s", msg)
		return
	}
	f.CPUs.Assignment = a
}
