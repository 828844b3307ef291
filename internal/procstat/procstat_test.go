package procstat_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"wagate/internal/procstat"
	"wagate/internal/procstat/procstattest"
)

// fakeProc is a fake /proc (procstattest.Write).
func fakeProc(t *testing.T, procs map[string][3]int) procstat.FS {
	return procstat.FS{Root: procstattest.Write(t, procs)}
}

func TestTreeCPUSumsTheRootsAndTheirDescendantsOnly(t *testing.T) {
	fs := fakeProc(t, map[string][3]int{
		"100": {1, 10, 5},    // php-fpm master
		"101": {100, 40, 20}, // worker
		"102": {100, 30, 10}, // worker
		"200": {1, 2, 1},     // nginx master
		"201": {200, 8, 4},   // nginx worker
		"300": {1, 500, 500}, // someone else
		"301": {300, 9, 9},   // someone else's child
	})
	got, err := fs.TreeCPU([]int{100, 200})
	if err != nil {
		t.Fatal(err)
	}
	if want := procstat.Ticks(15 + 60 + 40 + 3 + 12); got != want {
		t.Errorf("tree CPU = %v, want %v", got, want)
	}
	if _, err := fs.TreeCPU([]int{4242}); !errors.Is(err, procstat.ErrNoProc) {
		t.Errorf("no root running: err = %v, want procstat.ErrNoProc", err)
	}
}

func TestProcessMachineAndLoadReadings(t *testing.T) {
	fs := fakeProc(t, map[string][3]int{"self": {1, 7, 3}})
	p, err := fs.Process("self")
	if err != nil || p.CPU != procstat.Ticks(10) || p.PPID != 1 {
		t.Errorf("self = %+v, %v; want 10 ticks, ppid 1", p, err)
	}
	if rss, err := fs.RSS("self"); err != nil || rss != 7000*1024 {
		t.Errorf("RSS = %d, %v; want 7000 kB", rss, err)
	}
	// busy = user + nice + system + irq + softirq + steal (idle and iowait excluded)
	if busy, err := fs.MachineBusy(); err != nil || busy != procstat.Ticks(1000+50+300+10+20+5) {
		t.Errorf("machine busy = %v, %v", busy, err)
	}
	if la, err := fs.LoadAverage(); err != nil || la != [3]float64{3.14, 2.5, 1.25} {
		t.Errorf("load average = %v, %v", la, err)
	}
	missing := procstat.FS{Root: filepath.Join(fs.Root, "missing")}
	for name, err := range map[string]error{
		"process": func() error { _, err := missing.Process("self"); return err }(),
		"busy":    func() error { _, err := missing.MachineBusy(); return err }(),
		"rss":     func() error { _, err := missing.RSS("1"); return err }(),
	} {
		if !errors.Is(err, procstat.ErrNoProc) {
			t.Errorf("%s without /proc: err = %v, want procstat.ErrNoProc", name, err)
		}
	}
}

func TestParseStatRejectsMalformedLines(t *testing.T) {
	for _, line := range []string{"", "12 (x S 1", "12 (x) S 1 2 3", "12 (x) S one 1 1 0 -1 0 0 0 0 0 a b 0"} {
		if _, err := procstat.ParseStat(line); !errors.Is(err, procstat.ErrNoProc) {
			t.Errorf("procstat.ParseStat(%q) err = %v, want procstat.ErrNoProc", line, err)
		}
	}
}

func TestParseStatReadsTheNiceValue(t *testing.T) {
	const head = "7 (redis-server *:1) S 1 7 7 0 -1 4194560 100 0 0 0 12 34 0 0 "
	tests := []struct {
		name     string
		line     string
		wantNice int
		wantErr  bool
	}{
		{name: "a niced process", line: head + "30 10 4 0 100 1000 10", wantNice: 10},
		{name: "a favoured process", line: head + "15 -5 4 0 100 1000 10", wantNice: -5},
		{name: "the default", line: head + "20 0 1 0 100 1000 10", wantNice: 0},
		{name: "a line that ends before it", line: "7 (x) S 1 7 7 0 -1 0 0 0 0 0 12 34", wantNice: 0},
		{name: "not a number", line: head + "20 x 1 0 100 1000 10", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := procstat.ParseStat(tt.line)
			if tt.wantErr {
				if !errors.Is(err, procstat.ErrNoProc) {
					t.Fatalf("err = %v, want procstat.ErrNoProc", err)
				}
				return
			}
			if err != nil || p.Nice != tt.wantNice || p.CPU != procstat.Ticks(46) {
				t.Errorf("ParseStat = %+v, %v; want nice %d, 46 ticks", p, err, tt.wantNice)
			}
		})
	}
}

func TestTheRealProcOfThisProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc here")
	}
	var fs procstat.FS
	p, err := fs.Process(strconv.Itoa(os.Getpid()))
	if err != nil || p.PPID <= 0 {
		t.Fatalf("this process: %+v, %v", p, err)
	}
	if rss, err := fs.RSS("self"); err != nil || rss <= 0 {
		t.Fatalf("this process's RSS: %d, %v", rss, err)
	}
	if _, err := fs.TreeCPU([]int{os.Getpid()}); err != nil {
		t.Fatalf("this process's tree: %v", err)
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add("1 (bash) S 0 1 1 0 -1 4194560 100 0 0 0 12 34 0 0 20 0 1 0 100 1000 10")
	f.Add("2 (a) b) R 1 1 1 0 -1 0 0 0 0 0 1 2")
	f.Add(")")
	f.Fuzz(func(t *testing.T, line string) {
		p, err := procstat.ParseStat(line)
		if err == nil && p.CPU < 0 {
			t.Fatalf("negative CPU %v from %q", p.CPU, line)
		}
		if err != nil && !errors.Is(err, procstat.ErrNoProc) {
			t.Fatalf("error %v does not match procstat.ErrNoProc", err)
		}
	})
}
