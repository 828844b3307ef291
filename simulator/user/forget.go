package user

import (
	"errors"
	"syscall"
)

// unreached reports whether a request failed before the gateway could have seen it (connection
// refused: the gateway process is not running).
func unreached(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED)
}
