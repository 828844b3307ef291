package calibrate

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"wagate/internal/procstat"
	"wagate/internal/procstat/procstattest"
)

// fakeProc is a fake /proc (procstattest.Write).
func fakeProc(t *testing.T, procs map[string][3]int) string { return procstattest.Write(t, procs) }

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
