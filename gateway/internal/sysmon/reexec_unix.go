//go:build unix

package sysmon

import (
	"fmt"
	"os"
	"syscall"
)

// Reexec starts this program again in this process with Setting in its GODEBUG (execve: the
// same process id, open files and CPU affinity; nothing of this process's state survives, so
// call it first thing, before anything is opened). It returns nil without doing anything when
// GODEBUG already names schedtrace, and the error when the program could not be started again
// (the process then goes on as it is).
func Reexec() error {
	env, add := Env(os.Environ())
	if !add {
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("sysmon: find this program: %w", err)
	}
	if err := syscall.Exec(exe, os.Args, env); err != nil {
		return fmt.Errorf("sysmon: start %s again with GODEBUG=%s: %w", exe, Setting, err)
	}
	return nil // not reached
}
