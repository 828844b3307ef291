package api_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"wagate/gateway/api"
	"wagate/gateway/session"
	"wagate/gateway/session/sessiontest"
)

// hostileServer is the API behind api.NewServer (the production timeouts and header bound) on a
// loopback port.
type hostileServer struct {
	url  string
	addr string
	srv  *http.Server
	m    *session.Manager
}

func startHostileServer(t *testing.T) *hostileServer {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m, err := session.New(context.Background(), session.Config{Logger: log}, sessiontest.NewDriver(), sessiontest.NewStore(), &sessiontest.Sink{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := api.New(api.Config{Token: token, Sessions: m, Reader: m, Activity: &activity{active: map[string]bool{}}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := api.NewServer(ln.Addr().String(), h, log)
	go srv.Serve(ln)
	return &hostileServer{url: "http://" + ln.Addr().String(), addr: ln.Addr().String(), srv: srv, m: m}
}

func (s *hostileServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	_ = s.m.Close(ctx)
}

// normalUsers runs users that start their session, read it and list sessions, rounds times each;
// it returns the requests that succeeded and those that did not.
func normalUsers(t *testing.T, client *http.Client, base string, users, rounds int) (ok, failed int64) {
	t.Helper()
	var okN, badN atomic.Int64
	var wg sync.WaitGroup
	for u := range users {
		wg.Go(func() {
			id := fmt.Sprintf("user-%d", u)
			for range rounds {
				for _, rq := range []struct{ method, path, body string }{
					{"POST", "/sessions", `{"session_id":"` + id + `"}`},
					{"GET", "/sessions/" + id, ""},
					{"GET", "/sessions?limit=10", ""},
				} {
					req, _ := http.NewRequest(rq.method, base+rq.path, strings.NewReader(rq.body))
					req.Header.Set("Authorization", "Bearer "+token)
					resp, err := client.Do(req)
					if err != nil {
						badN.Add(1)
						continue
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						okN.Add(1)
					} else {
						badN.Add(1)
					}
				}
			}
		})
	}
	wg.Wait()
	return okN.Load(), badN.Load()
}

// hostileOutcome counts the answers hostile requests got, by status code.
type hostileOutcome struct {
	mu    sync.Mutex
	codes map[int]int
	errs  int
}

func (h *hostileOutcome) add(code int, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		h.errs++
		return
	}
	h.codes[code]++
}

// A flood of malformed, oversized, unauthenticated and slow (slowloris) requests does not stop
// normal users: their requests keep succeeding, every hostile request is refused with the right
// 4xx (or its connection closed by the server's timeouts), and afterwards no goroutine or memory
// growth remains.
func TestHostileClientsDoNotHurtNormalUsers(t *testing.T) {
	if testing.Short() {
		t.Skip("holds slow connections for the server's read-header timeout (5 s)")
	}
	s := startHostileServer(t)
	defer s.close()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer client.CloseIdleConnections()

	// Phase 1: normal users alone (creates their sessions), then the baseline.
	const users, rounds = 20, 20
	if ok, bad := normalUsers(t, client, s.url, users, 2); bad != 0 || ok != int64(users*2*3) {
		t.Fatalf("warm-up: %d ok, %d failed", ok, bad)
	}
	baseGoroutines, baseHeap := settledGoroutines(0), heapInUse()

	// Phase 2: the same users while hostile clients attack.
	hostileClient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	out := &hostileOutcome{codes: map[int]int{}}
	var hostile sync.WaitGroup
	send := func(method, path, auth, body string, header map[string]string) {
		req, _ := http.NewRequest(method, s.url+path, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := hostileClient.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			out.add(resp.StatusCode, nil)
			return
		}
		out.add(0, err)
	}
	malformed := []string{`{`, `{"session_id":`, `[]`, `null`, `{"session_id":123}`, "\x00\xff", `{"session_id":"` + strings.Repeat("x", 500) + `"}`, `{"to":1,"text":[]}`}
	const workers, perWorker = 8, 250 // 2,000 malformed + 2,000 unauthenticated requests
	for w := range workers {
		hostile.Go(func() {
			for i := range perWorker {
				body := malformed[(w+i)%len(malformed)]
				send("POST", "/sessions", "Bearer "+token, body, nil)                          // malformed, authenticated: 400
				send("POST", "/sessions/x/messages", "Bearer guess-"+fmt.Sprint(i), body, nil) // unauthenticated: 401, then 429
			}
		})
	}
	hostile.Go(func() { // oversized bodies and headers
		big := strings.Repeat("a", 1<<20)
		for i := range 40 {
			send("POST", "/sessions", "Bearer "+token, `{"session_id":"`+big+`"}`, nil)                                // 413
			send("GET", "/sessions", "Bearer "+token, "", map[string]string{"X-Junk": strings.Repeat("j", 100<<10+i)}) // 431
		}
	})
	const slowConns = 200
	var slowClosed atomic.Int64
	for range slowConns { // slowloris: a header line every 500 ms, never finishing
		hostile.Go(func() {
			c, err := net.Dial("tcp", s.addr)
			if err != nil {
				out.add(0, err)
				return
			}
			defer c.Close()
			fmt.Fprintf(c, "GET /sessions HTTP/1.1\r\nHost: x\r\n")
			deadline := time.Now().Add(12 * time.Second)
			for time.Now().Before(deadline) {
				if _, err := fmt.Fprintf(c, "X-Slow-%d: 1\r\n", time.Now().UnixNano()); err != nil {
					slowClosed.Add(1)
					return
				}
				_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
				if _, err := bufio.NewReader(c).ReadByte(); err != nil && !isTimeout(err) {
					slowClosed.Add(1) // the server closed it
					return
				}
			}
		})
	}
	ok, bad := normalUsers(t, client, s.url, users, rounds)
	hostile.Wait()
	hostileClient.CloseIdleConnections()

	total := ok + bad
	if total != users*rounds*3 || float64(ok)/float64(total) < 0.99 {
		t.Errorf("normal users under attack: %d of %d requests succeeded, want at least 99%%", ok, total)
	}
	out.mu.Lock()
	codes, errs := out.codes, out.errs
	out.mu.Unlock()
	t.Logf("hostile answers by status: %v (transport errors %d); slow connections closed by the server: %d/%d; normal users %d/%d ok",
		codes, errs, slowClosed.Load(), slowConns, ok, total)
	for code, n := range codes {
		switch code {
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusTooManyRequests,
			http.StatusRequestEntityTooLarge, http.StatusRequestHeaderFieldsTooLarge, http.StatusUnprocessableEntity:
		default:
			t.Errorf("%d hostile requests answered %d", n, code)
		}
	}
	if codes[http.StatusTooManyRequests] == 0 {
		t.Error("the unauthenticated flood was never rate limited")
	}
	if codes[http.StatusRequestEntityTooLarge] == 0 || codes[http.StatusRequestHeaderFieldsTooLarge] == 0 {
		t.Errorf("oversized bodies or headers were not refused: %v", codes)
	}
	if slowClosed.Load() != slowConns {
		t.Errorf("%d of %d slowloris connections were still open after 12 s (read-header timeout 5 s)", slowConns-slowClosed.Load(), slowConns)
	}

	// Phase 3: nothing of the attack remains.
	client.CloseIdleConnections()
	if g := settledGoroutines(baseGoroutines + 5); g > baseGoroutines+5 {
		t.Errorf("goroutines: %d after the attack, %d before", g, baseGoroutines)
	}
	if h := heapInUse(); h > baseHeap+32<<20 {
		t.Errorf("heap in use: %d MiB after the attack, %d MiB before", h>>20, baseHeap>>20)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// settledGoroutines waits up to 10 s for the goroutine count to reach at most want (0: just let
// it settle for a moment) and returns it.
func settledGoroutines(want int) int {
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		n := runtime.NumGoroutine()
		if (want > 0 && n <= want) || time.Now().After(deadline) {
			return n
		}
		if want == 0 {
			time.Sleep(200 * time.Millisecond)
			return runtime.NumGoroutine()
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}
