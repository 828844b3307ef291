//go:build linux

package fakelaravel

import (
	"syscall"
	"time"
)

// preciseSleep blocks the calling goroutine's thread for d with nanosleep: microsecond resolution
// where the runtime's timers have millisecond resolution on an idle process. The thread sleeps in
// the kernel (no CPU is burnt); the runtime hands its P to other goroutines meanwhile.
func preciseSleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	for syscall.Nanosleep(&ts, &ts) == syscall.EINTR {
	}
}
