package fdtable

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fdSize is the size of this process's descriptor table, as the kernel reports it.
func fdSize(t testing.TB) int {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "FDSize:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no FDSize in /proc/self/status")
	return 0
}

// limit is openLimit, the test failing when it cannot be read.
func limit(t testing.TB) int {
	t.Helper()
	n, err := openLimit()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestReserveGrowsTheTableAndLeavesNothingOpen(t *testing.T) {
	before := fdSize(t)
	want := min(4*before, limit(t))
	if want <= before {
		t.Skipf("the open files limit (%d) leaves no room above the table's %d entries", limit(t), before)
	}
	got, err := Reserve(want)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("Reserve(%d) = %d", want, got)
	}
	if after := fdSize(t); after < want {
		t.Errorf("the table holds %d descriptors after Reserve(%d) (%d before)", after, want, before)
	}
	if isOpen(want - 1) {
		t.Errorf("descriptor %d is left open", want-1)
	}
	if again, err := Reserve(want); err != nil || again != want {
		t.Errorf("Reserve(%d) again = %d, %v", want, again, err)
	}
}

func TestReserveIsBoundedByTheOpenFilesLimit(t *testing.T) {
	got, err := Reserve(1 << 30)
	if err != nil {
		t.Fatal(err)
	}
	if limit := limit(t); got != limit {
		t.Errorf("Reserve(1<<30) = %d, want the limit %d (at most Max, %d)", got, limit, Max)
	}
	if got, err := Reserve(0); err != nil || got != 0 {
		t.Errorf("Reserve(0) = %d, %v", got, err)
	}
}

func TestReserveKeepsADescriptorAlreadyOpenAtTheTop(t *testing.T) {
	f, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	top := min(fdSize(t)*2, limit(t)) - 1
	if err := unix.Dup3(int(f.Fd()), top, unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(top)
	if got, err := Reserve(top + 1); err != nil || got != top+1 {
		t.Fatalf("Reserve(%d) = %d, %v", top+1, got, err)
	}
	if !isOpen(top) {
		t.Errorf("Reserve closed descriptor %d, which was open before it", top)
	}
}

// childEnv makes the test binary a child that opens sockets (see TestMain).
const childEnv = "FDTABLE_BENCH_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(openSockets(mode))
	}
	os.Exit(m.Run())
}

// openSockets opens sockets up to descriptor 9000 (past 8192), the table reserved first when
// mode is "reserved", and prints the longest socket(2) call in microseconds.
func openSockets(mode string) int {
	const n = 9000
	if mode == "reserved" {
		if _, err := Reserve(n + 64); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	var longest time.Duration
	for {
		began := time.Now()
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		longest = max(longest, time.Since(began))
		if fd >= n {
			break
		}
	}
	fmt.Println(longest.Microseconds())
	return 0
}

// BenchmarkOpeningSockets opens 9,000 sockets in a new process and reports the longest socket(2)
// call: with the table growing as they open (seven doublings, each waiting for an RCU grace period
// on a raw system call) and with it reserved first.
func BenchmarkOpeningSockets(b *testing.B) {
	if limit(b) < 9100 {
		b.Skipf("the open files limit (%d) is below the 9,100 descriptors the child needs", limit(b))
	}
	for _, mode := range []string{"growing", "reserved"} {
		b.Run(mode, func(b *testing.B) {
			var longest time.Duration
			for b.Loop() {
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), childEnv+"="+mode)
				out, err := cmd.Output()
				if err != nil {
					b.Fatalf("child: %v", err)
				}
				us, err := strconv.Atoi(strings.TrimSpace(string(out)))
				if err != nil {
					b.Fatalf("child printed %q", out)
				}
				longest = max(longest, time.Duration(us)*time.Microsecond)
			}
			b.ReportMetric(float64(longest)/float64(time.Millisecond), "longest-socket-ms")
		})
	}
}
