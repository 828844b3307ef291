package calibrate

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"wagate/internal/procstat"
)

// fakeProc writes a minimal /proc tree: machine stat, loadavg, and processes given as
// pid -> (ppid, utime ticks, stime ticks).
func fakeProc(t *testing.T, procs map[string][3]int) string {
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
		// Field 2 contains spaces and a ')' to check that parsing counts from the last ')'.
		write(filepath.Join(pid, "stat"), pid+" (php-fpm: pool (x) y) S "+strconv.Itoa(p[0])+" 1 1 0 -1 4194560 100 0 0 0 "+strconv.Itoa(p[1])+" "+strconv.Itoa(p[2])+" 0 0 20 0 1 0 100 1000 10\n")
	}
	return dir
}

func TestSamplerSumsTheServerProcessTrees(t *testing.T) {
	proc := fakeProc(t, map[string][3]int{
		"self": {1, 7, 3},
		"100":  {1, 10, 5},    // php-fpm master
		"101":  {100, 40, 20}, // worker
		"102":  {100, 30, 10}, // worker
		"200":  {1, 2, 1},     // nginx master
		"201":  {200, 8, 4},   // nginx worker
		"300":  {1, 500, 500}, // someone else
	})
	s, err := Sampler{Proc: proc, Roots: []int{100, 200}}.Sample()
	if err != nil {
		t.Fatal(err)
	}
	if want := procstat.Ticks(15 + 60 + 40 + 3 + 12); s.Server != want {
		t.Errorf("server CPU = %v, want %v", s.Server, want)
	}
	if want := procstat.Ticks(10); s.Self != want {
		t.Errorf("self CPU = %v, want %v", s.Self, want)
	}
	// busy = user + nice + system + irq + softirq + steal (idle and iowait excluded)
	if want := procstat.Ticks(1000 + 50 + 300 + 10 + 20 + 5); s.Busy != want {
		t.Errorf("machine busy = %v, want %v", s.Busy, want)
	}
	la, err := Sampler{Proc: proc}.LoadAverage()
	if err != nil || la != [3]float64{3.14, 2.5, 1.25} {
		t.Errorf("load average = %v, %v", la, err)
	}
}

func TestSamplerFailsWhenTheServerIsGone(t *testing.T) {
	proc := fakeProc(t, map[string][3]int{"self": {1, 1, 1}})
	_, err := Sampler{Proc: proc, Roots: []int{4242}}.Sample()
	if !errors.Is(err, ErrNoProc) {
		t.Fatalf("err = %v, want ErrNoProc", err)
	}
	_, err = Sampler{Proc: filepath.Join(proc, "missing")}.Sample()
	if !errors.Is(err, ErrNoProc) {
		t.Fatalf("err = %v, want ErrNoProc", err)
	}
}

func TestUsageSplitsMachineCPUBetweenServerSelfAndOthers(t *testing.T) {
	t0 := time.Unix(0, 0)
	a := CPUSample{At: t0, Server: time.Second, Self: time.Second, Busy: 10 * time.Second}
	b := CPUSample{At: t0.Add(2 * time.Second), Server: 3 * time.Second, Self: 1500 * time.Millisecond, Busy: 14 * time.Second}
	u := b.Sub(a)
	if u.Server != 2*time.Second || u.Self != 500*time.Millisecond || u.Others != 1500*time.Millisecond {
		t.Fatalf("usage = %+v", u)
	}
	if got := u.Cores(u.Server); got != 1 {
		t.Errorf("server cores = %v, want 1", got)
	}
}
