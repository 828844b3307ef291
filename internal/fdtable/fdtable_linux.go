package fdtable

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Reserve grows the process's descriptor table to hold n descriptors (bounded by the soft
// RLIMIT_NOFILE, which the Go runtime raises to the hard one as it starts, and by Max) and
// returns how many it holds now. It is for a program's start, before it opens its connections;
// when the table already has room it changes nothing.
func Reserve(n int) (int, error) {
	limit, err := openLimit()
	if err != nil {
		return 0, err
	}
	n = min(n, limit)
	if n <= 0 {
		return 0, nil
	}
	last := n - 1
	// The highest descriptor decides the table's size. One already open there means the table is
	// that large (and dup3 would close it).
	if isOpen(last) {
		return n, nil
	}
	null, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("fdtable: open /dev/null: %w", err)
	}
	defer unix.Close(null)
	// Nothing else is given number last meanwhile: a new descriptor takes the lowest free number.
	if err := unix.Dup3(null, last, unix.O_CLOEXEC); err != nil {
		return 0, fmt.Errorf("fdtable: make room for %d descriptors: %w", n, err)
	}
	if err := unix.Close(last); err != nil {
		return 0, fmt.Errorf("fdtable: close descriptor %d: %w", last, err)
	}
	return n, nil
}

// openLimit is the most descriptors Reserve makes room for: the soft RLIMIT_NOFILE, at most Max.
func openLimit() (int, error) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("fdtable: read the open files limit: %w", err)
	}
	return int(min(lim.Cur, Max)), nil
}

// isOpen reports whether descriptor fd is open.
func isOpen(fd int) bool {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	return !errors.Is(err, unix.EBADF)
}
