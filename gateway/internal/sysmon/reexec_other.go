//go:build !unix

package sysmon

import "errors"

// Reexec is not available here: the process goes on with Go's default sysmon.
func Reexec() error {
	return errors.New("sysmon: starting the program again is supported on unix systems only")
}
