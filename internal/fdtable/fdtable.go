// Package fdtable grows a process's table of open files once, as it starts, so that it does not
// grow while the process serves.
//
// Linux keeps a process's open files in a table that doubles when a new descriptor does not fit
// (64, 128, ... entries), and in a process of several threads (every Go program) it waits for an
// RCU grace period before it frees the old table (fs/file.c: expand_fdtable, synchronize_rcu):
// 7-14 ms on this project's 2-core machine at each power of two from 256 to 8192
// (BenchmarkOpeningSockets measures it). Go makes socket(2) a raw system call, one the scheduler
// does not see, so the thread that waits keeps its Go processor: with one processor (a process
// pinned to one CPU) every goroutine waits with it. That was one cause of the load generator's
// stall as the seed-batch-1000 pairings completed (its goroutines waited up to 335 ms to run, the
// new poll connections' dials traced to net.socket on CPU 0's one processor), and a gateway
// dialing thousands of WhatsApp connections pays the same at each doubling.
//
// Reserve makes the table its final size before any of that: it duplicates a descriptor onto
// the highest number the process will use and closes it (the table never shrinks). The table
// costs the kernel 8 bytes and 2 bits per entry (~530 KB at 65,536 entries), none of it in the
// process's resident memory.
package fdtable

// Max is the most descriptors Reserve makes room for whatever the limit: beyond it the table
// would cost more than a megabyte for descriptors a process of this project never opens.
const Max = 1 << 16
