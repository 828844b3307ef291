// Package procstattest writes fake /proc trees for tests of code that reads /proc through
// wagate/internal/procstat.
package procstattest

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// Write creates a minimal /proc tree in a temporary directory and returns its path: the machine's
// stat ("cpu  1000 50 300 9000 100 10 20 5 0 0", so 1385 busy ticks), loadavg (3.14 2.50 1.25),
// and a stat and status file per process, given as pid (or "self") -> {ppid, utime ticks, stime
// ticks}, with VmRSS = 1000 kB per utime tick.
// The command name holds spaces and a ')' so that parsers must count fields after the last ')'.
func Write(t testing.TB, procs map[string][3]int) string {
	t.Helper()
	dir := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("stat", "cpu  1000 50 300 9000 100 10 20 5 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n")
	write("loadavg", "3.14 2.50 1.25 4/321 12345\n")
	for pid, p := range procs {
		write(filepath.Join(pid, "stat"), pid+" (php-fpm: pool (x) y) S "+strconv.Itoa(p[0])+" 1 1 0 -1 4194560 100 0 0 0 "+
			strconv.Itoa(p[1])+" "+strconv.Itoa(p[2])+" 0 0 20 0 1 0 100 1000 10\n")
		write(filepath.Join(pid, "status"), "Name:\tphp-fpm\nVmRSS:\t    "+strconv.Itoa(p[1]*1000)+" kB\nThreads:\t1\n")
	}
	return dir
}
