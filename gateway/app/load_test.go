package app_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"wagate/fakelaravel"
	"wagate/internal/procstat"
	"wagate/internal/proctest"
	"wagate/internal/redistest"
	"wagate/simulator/fakewa"
)

// procStat reads a process's resident memory (KiB) and CPU time (user+system).
func procStat(t *testing.T, pid int) (rssKiB int64, cpu time.Duration) {
	t.Helper()
	var fs procstat.FS
	p, err := fs.Process(strconv.Itoa(pid))
	if err != nil {
		t.Fatal(err)
	}
	rss, err := fs.RSS(strconv.Itoa(pid))
	if err != nil {
		t.Fatal(err)
	}
	return rss / 1024, p.CPU
}

// TestLoadManySessions measures the gateway binary with N connected sessions (N from
// WAGATE_LOAD_SESSIONS, skipped when unset; WAGATE_LOAD_CONCURRENCY pairings at once, default 50;
// WAGATE_LOAD_MODE legacy or batch, on a redis-server of its own): resident memory per connected
// session above the empty gateway's, idle CPU, pairing time, and the reconnect of all sessions
// after a clean restart, which sends no status again.
// It is a measurement, not a unit test: `make bench` is the real harness.
func TestLoadManySessions(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("WAGATE_LOAD_SESSIONS"))
	if n <= 0 {
		t.Skip("set WAGATE_LOAD_SESSIONS=N to measure the gateway with N connected sessions")
	}
	ctx := context.Background()
	wa, err := fakewa.New(fakewa.Config{RootKey: rootKey(), Logger: testLogger(), StreamErrorCloseDelay: time.Second, Receipts: fakewa.ReceiptsNone})
	if err != nil {
		t.Fatal(err)
	}
	if err := wa.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer wa.Close()
	// A roomy Laravel: this measures the gateway, not Laravel's capacity.
	capacity := fakelaravel.DefaultCapacityModel()
	capacity.Cores, capacity.Workers, capacity.Backlog = 0, 64, 8192
	capacity.BootstrapCPU, capacity.PerRowCPU = time.Millisecond, 0
	lv, err := fakelaravel.New(ctx, fakelaravel.Config{Token: laravelToken, Logger: testLogger(), Capacity: capacity})
	if err != nil {
		t.Fatal(err)
	}
	defer lv.Close()
	lsrv := httptest.NewServer(lv)
	defer lsrv.Close()

	w := &processes{t: t, dir: t.TempDir(), bin: proctest.Binaries(t)}
	w.gwEnv = []string{
		"WAGATE_API_TOKEN=" + apiToken,
		"WAGATE_LARAVEL_URL=" + lsrv.URL,
		"WAGATE_LARAVEL_TOKEN=" + laravelToken,
		"WAGATE_DATA_DIR=" + filepath.Join(w.dir, "gateway-data"),
		"WAGATE_MODE=" + envOr("WAGATE_LOAD_MODE", "legacy"),
		"WAGATE_WA_DIAL=" + wa.Addr(),
		"WAGATE_WA_ROOT_PUBKEY=" + fmt.Sprintf("%x", wa.RootPublicKey()),
		"WAGATE_WA_INSECURE_TEST=1",
	}
	if envOr("WAGATE_LOAD_MODE", "legacy") == "batch" {
		// A redis-server of the test's own, which outlives the gateway's restart below as a
		// deployment's Redis does: the restart after a clean stop then sends nothing again
		// (resync=false). The embedded Redis is in memory and restarts with the process, a
		// true loss of the outbox's data, after which every state is sent again.
		w.gwEnv = append(w.gwEnv, "WAGATE_REDIS_URL=redis://"+redistest.StartServer(t, redistest.Options{}).Addr)
	}
	w.startGateway()
	pid := w.gateway.Pid()
	time.Sleep(time.Second)
	baseRSS, _ := procStat(t, pid)

	c := &client{t: t, base: w.gatewayURL(), hc: &http.Client{Timeout: 120 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1024}}}
	start := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Int64
	concurrency, _ := strconv.Atoi(envOr("WAGATE_LOAD_CONCURRENCY", "50"))
	sem := make(chan struct{}, max(concurrency, 1))
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			id := fmt.Sprintf("load%05d", i)
			if code := c.call("POST", "/sessions", map[string]string{"session_id": id}, nil); code != 200 {
				failed.Add(1)
				return
			}
			var qr struct {
				QR string `json:"qr"`
			}
			deadline := time.Now().Add(60 * time.Second)
			for c.call("GET", "/sessions/"+id+"/qr", nil, &qr) != 200 || qr.QR == "" {
				if time.Now().After(deadline) {
					failed.Add(1)
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
			if _, err := wa.Pair(ctx, qr.QR, fmt.Sprintf("1666%07d", i)); err != nil {
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d of %d pairings failed", failed.Load(), n)
	}
	connected := func() int {
		st, _ := lv.State(ctx)
		k := 0
		for _, s := range st.Sessions {
			if s.EstadoQR == "connected" {
				k++
			}
		}
		return k
	}
	proctest.Eventually(t, "every session connected in Laravel", 5*time.Minute, func() (bool, string) {
		k := connected()
		return k == n, strconv.Itoa(k)
	})
	pairTime := time.Since(start)

	time.Sleep(5 * time.Second) // let pairing garbage be collected
	rss1, cpu1 := procStat(t, pid)
	time.Sleep(10 * time.Second)
	rss2, cpu2 := procStat(t, pid)
	idleCPU := (cpu2 - cpu1).Seconds() / 10 // over 10 s, as a fraction of a core

	restartStart := time.Now()
	w.restartGateway(ctx)
	proctest.Eventually(t, "every session live again after a restart", 5*time.Minute, func() (bool, string) {
		resp, err := http.Get(w.gatewayURL() + "/metrics")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "wagate_sessions_live "); ok {
				live, _ := strconv.ParseFloat(v, 64)
				return int(live) == n, v
			}
		}
		return false, "no wagate_sessions_live"
	})
	reconnect := time.Since(restartStart)
	rss3, _ := procStat(t, w.gateway.Pid())

	perSession := float64(rss2-baseRSS) / float64(n)
	t.Logf("sessions=%d pair_all=%v rss_base=%d KiB rss_connected=%d KiB (%d after 10 s idle) per_session=%.0f KiB idle_cpu=%.3f core reconnect_all_after_restart=%v rss_after_restart=%d KiB",
		n, pairTime.Round(time.Millisecond), baseRSS, rss1, rss2, perSession, idleCPU, reconnect.Round(time.Millisecond), rss3)
	if n >= 500 && perSession > 300 { // below that, fixed costs dominate the ratio
		t.Errorf("%.0f KiB per connected session, target <= 300 KiB", perSession)
	}
	w.gateway.Stop(t, 60*time.Second)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
