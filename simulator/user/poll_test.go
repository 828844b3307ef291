package user

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"wagate/simulator/metrics"
)

// rawServer answers every request read on a connection with answer (raw bytes); with closeAfter
// it closes each connection after that many answers without saying so (an idle close). It
// allocates nothing per request, so allocation tests measure the client alone.
func rawServer(t testing.TB, answer string, closeAfter int) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	out := []byte(answer)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for n := 0; closeAfter == 0 || n < closeAfter; n++ {
					for { // the request's head, up to its empty line
						line, err := br.ReadSlice('\n')
						if err != nil {
							return
						}
						if len(line) <= 2 {
							break
						}
					}
					if _, err := c.Write(out); err != nil {
						return
					}
				}
			})
		}
	})
	return "http://" + ln.Addr().String()
}

func okAnswer(body string) string {
	return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

func newPollAPI(t testing.TB, base string) (*API, *metrics.Registry) {
	reg := metrics.NewRegistry(nil)
	return NewAPI(base, "tok", &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxConnsPerHost: 4}}, reg), reg
}

// How the polls' client reads answers: each framing the gateway (or a proxy) may use is read to
// its end, so the connection carries the next poll; what it cannot read fails the poll.
func TestPollReadsEachAnswerToItsEnd(t *testing.T) {
	for _, tc := range []struct {
		name     string
		answer   string
		status   string
		failed   float64
		pollsOK  bool
		endpoint string
	}{
		{"content-length", okAnswer(statusAnswer), "200", 0, true, EndpointStatus},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;x=y\r\nabc\r\n0\r\nTrailer: 1\r\n\r\n", "200", 0, true, EndpointStatus},
		{"header names in any case", "HTTP/1.1 200 OK\r\ncontent-LENGTH: 2\r\n\r\n{}", "200", 0, true, EndpointStatus},
		{"connection: close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}", "200", 0, true, EndpointStatus},
		{"no content", "HTTP/1.1 204 No Content\r\n\r\n", "204", 0, true, EndpointStatus},
		{"an error answer is a failed request", "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 2\r\n\r\n{}", "500", 1, true, EndpointStatus},
		{"a QR poll's 404 is expected", "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}", "404", 0, true, EndpointQR},
		{"malformed status line", "HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\n{}", "0", 1, false, EndpointStatus},
		{"malformed content-length", "HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\n{}", "200", 1, false, EndpointStatus},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api, reg := newPollAPI(t, rawServer(t, tc.answer, 0))
			p := api.NewPoller(context.Background(), tc.endpoint, "s-1", metrics.Tags{"scenario": "users"})
			defer p.Close()
			for i := range 3 {
				if err := p.Poll(); (err == nil) != tc.pollsOK {
					t.Fatalf("poll %d: %v, want ok %v", i, err, tc.pollsOK)
				}
			}
			tags := metrics.Tags{"endpoint": tc.endpoint, "status": tc.status, "scenario": "users"}
			if n := reg.Total("http_reqs", tags); n != 3 {
				t.Errorf("http_reqs%v = %v, want 3", tags, n)
			}
			if got := reg.Total("http_req_failed", tags); got != 3*tc.failed {
				t.Errorf("failed = %v, want %v", got, 3*tc.failed)
			}
		})
	}
}

// A server that closes an idle keep-alive connection without saying so (its idle timeout) costs
// no failed poll: the request goes again on a fresh connection, as net/http retries it.
func TestPollRetriesOnAConnectionTheServerClosedWhileIdle(t *testing.T) {
	api, reg := newPollAPI(t, rawServer(t, okAnswer(statusAnswer), 1))
	p := api.NewPoller(context.Background(), EndpointStatus, "s-1", nil)
	defer p.Close()
	for i := range 5 {
		if err := p.Poll(); err != nil {
			t.Fatalf("poll %d: %v", i, err)
		}
		time.Sleep(5 * time.Millisecond) // the server's close arrives
	}
	if failed := reg.Total("http_req_failed", nil); failed != 0 {
		t.Errorf("%v polls failed", failed)
	}
}

// The request the gateway receives is the Laravel app's: its path, bearer token and Accept.
func TestPollSendsTheLaravelAppsRequest(t *testing.T) {
	got := make(chan *http.Request, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r
		_, _ = io.WriteString(w, "{}")
	}))
	defer srv.Close()
	api, _ := newPollAPI(t, srv.URL)
	for _, tc := range []struct{ endpoint, path string }{{EndpointStatus, "/sessions/a%2Fb"}, {EndpointQR, "/sessions/a%2Fb/qr"}} {
		p := api.NewPoller(context.Background(), tc.endpoint, "a/b", nil)
		if err := p.Poll(); err != nil {
			t.Fatal(err)
		}
		p.Close()
		r := <-got
		if r.Method != http.MethodGet || r.URL.EscapedPath() != tc.path || r.Header.Get("Authorization") != "Bearer tok" || r.Header.Get("Accept") != "application/json" {
			t.Errorf("%s: %s %s auth %q accept %q", tc.endpoint, r.Method, r.URL.EscapedPath(), r.Header.Get("Authorization"), r.Header.Get("Accept"))
		}
	}
}

// A poll under way when its context ends (the user stops) returns at once, not after the answer.
func TestPollEndsWithItsContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // accepts and never answers
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	api, _ := newPollAPI(t, "http://"+ln.Addr().String())
	ctx, cancel := context.WithCancel(context.Background())
	p := api.NewPoller(ctx, EndpointStatus, "s-1", nil)
	defer p.Close()
	time.AfterFunc(100*time.Millisecond, cancel)
	began := time.Now()
	if err := p.Poll(); err == nil {
		t.Fatal("a poll without an answer succeeded")
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Fatalf("the poll returned %v after its context ended", took)
	}
}

// The load generator's hot path: a poll on a kept-alive connection allocates nothing (request
// built once, answer parsed in place, tags' key computed once).
func TestAPollAllocatesNothing(t *testing.T) {
	api, _ := newPollAPI(t, rawServer(t, okAnswer(statusAnswer), 0))
	p := api.NewPoller(context.Background(), EndpointStatus, "s-1", metrics.Tags{"scenario": "users"})
	defer p.Close()
	if err := p.Poll(); err != nil { // dials; the tags of a 200 are prepared
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(200, func() {
		if err := p.Poll(); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("%v allocations per poll, want 0", n)
	}
}

func TestStatusCodeOfAStatusLine(t *testing.T) {
	for _, tc := range []struct {
		line string
		code int
		ok   bool
	}{
		{"HTTP/1.1 200 OK\r\n", 200, true},
		{"HTTP/1.0 404 Not Found\r\n", 404, true},
		{"HTTP/1.1 429\r\n", 429, true},
		{"HTTP/2 200 OK\r\n", 0, false},
		{"HTTP/1.1 20 OK\r\n", 0, false},
		{"garbage\r\n", 0, false},
	} {
		code, err := statusCode([]byte(tc.line))
		if code != tc.code || (err == nil) != tc.ok {
			t.Errorf("%q: %d %v, want %d ok %v", tc.line, code, err, tc.code, tc.ok)
		}
	}
}

// Every is the one poll loop of the Laravel app's pollers (the native users' poller goroutines
// and k6/x/wagate's background pollers): it polls after first, then once per think time, and
// ends when its context ends or (at its next poll time) stop closes; nothing is polled after it
// returned.
func TestEveryPollsUntilItsContextEndsOrItIsStopped(t *testing.T) {
	for _, tc := range []struct {
		name      string
		first     time.Duration
		wantPolls int // at least this many before the end
		byStop    bool
	}{
		{"its context ends", 0, 3, false},
		{"stop closes", 0, 3, true},
		{"nothing is polled before first", time.Hour, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, count := countingPolls(t)
			api, _ := newPollAPI(t, url)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stop := make(chan struct{})
			p := api.NewPoller(ctx, EndpointStatus, "s-1", nil)
			defer p.Close()
			done := make(chan struct{})
			go func() {
				defer close(done)
				p.Every(ctx, tc.first, NewPace(5*time.Millisecond, 1, 2), stop)
			}()
			deadline := time.Now().Add(10 * time.Second)
			for count() < tc.wantPolls && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			if tc.wantPolls == 0 {
				time.Sleep(50 * time.Millisecond)
			}
			if tc.byStop {
				close(stop)
			} else {
				cancel()
			}
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Every did not return after its end")
			}
			ended := count()
			if ended < tc.wantPolls || (tc.wantPolls == 0 && ended != 0) {
				t.Fatalf("%d polls before the end, want at least %d (exactly 0 before first)", ended, tc.wantPolls)
			}
			time.Sleep(30 * time.Millisecond)
			if n := count(); n != ended {
				t.Fatalf("%d polls after Every returned", n-ended)
			}
		})
	}
}

// A stopped poller is not woken by the stop: it ends at its next poll time, without polling, so
// that the run's end does not make every poller runnable at once; its context still ends it at
// once.
func TestAStoppedPollerEndsAtItsNextPollTimeWithoutPolling(t *testing.T) {
	url, count := countingPolls(t)
	api, _ := newPollAPI(t, url)
	for _, tc := range []struct {
		name  string
		first time.Duration
		pace  time.Duration
		// endsByStop: Every returns by itself after stop closed (its next poll time comes); else
		// it is still waiting 100 ms after the stop and only its context ends it.
		endsByStop bool
	}{
		{"its next poll time comes soon", 0, 20 * time.Millisecond, true},
		{"its next poll time is an hour away", time.Hour, time.Hour, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			stop := make(chan struct{})
			p := api.NewPoller(ctx, EndpointStatus, "s-1", nil)
			defer p.Close()
			done := make(chan struct{})
			before := count()
			go func() {
				defer close(done)
				p.Every(ctx, tc.first, NewPace(tc.pace, 1, 2), stop)
			}()
			if tc.first == 0 {
				deadline := time.Now().Add(10 * time.Second)
				for count() == before && time.Now().Before(deadline) {
					time.Sleep(time.Millisecond)
				}
			}
			close(stop)
			stoppedAt := count()
			select {
			case <-done:
				if !tc.endsByStop {
					t.Fatal("Every returned at the stop, before its next poll time")
				}
			case <-time.After(100 * time.Millisecond):
				if tc.endsByStop {
					select {
					case <-done:
					case <-time.After(10 * time.Second):
						t.Fatal("Every did not end at its next poll time after the stop")
					}
				} else {
					cancel()
					select {
					case <-done:
					case <-time.After(10 * time.Second):
						t.Fatal("Every did not return when its context ended")
					}
				}
			}
			// A poll under way at the stop may finish; none starts after it.
			if n := count(); n > stoppedAt+1 {
				t.Fatalf("%d polls after the stop", n-stoppedAt)
			}
		})
	}
}

// countingPolls starts a loopback HTTP server, closed when the test ends, that answers every
// request with an empty JSON object; count says how many requests (polls) it has answered.
func countingPolls(t *testing.T) (url string, count func() int) {
	t.Helper()
	var mu sync.Mutex
	polls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		polls++
		mu.Unlock()
		_, _ = io.WriteString(w, "{}")
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() int { mu.Lock(); defer mu.Unlock(); return polls }
}
