//go:build !linux

package fakelaravel

import "time"

// preciseSleep sleeps for d; outside Linux it has the runtime timers' resolution.
func preciseSleep(d time.Duration) { time.Sleep(d) }
