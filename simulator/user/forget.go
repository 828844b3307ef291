package user

import (
	"errors"
	"syscall"
)

// Unreached reports whether a request failed before the gateway could have seen it (connection
// refused: the gateway process is not running).
func Unreached(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED)
}
