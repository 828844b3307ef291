package api_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"wagate/gateway/api"
	"wagate/gateway/http1"
)

// BenchmarkServedStatusReadCPU reports the process's CPU per status read served over loopback
// keep-alive connections (cpu-us/op: getrusage, user + system, both ends of the socket), for
// three servers answering the same request:
//
//   - floor: what the harness's floor (simulator/floor) runs: an http.Server with only
//     ReadHeaderTimeout, a handler writing a fixed JSON of the status answer's size;
//   - timeouts: api.NewServer (ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout:
//     three more deadline updates per request) with the same fixed handler;
//   - gateway: api.NewServer with the real API handler (token, rate limiter, routing, the
//     session read, isSessionActive, the JSON answer, the metrics observation);
//   - lean-floor, lean-gateway: the fixed handler and the real one behind http1.Server, the
//     gateway's server (the lean path answers the plain GETs, api.NewServer the rest).
//
// The clients (raw sockets, one goroutine per connection, closed loop) cost the same in every
// case, so differences between the cases are the server's. Run the cases alternately and compare
// ratios; absolute times follow the machine's load.
//
//	go test ./gateway/api -run '^$' -bench ServedStatusReadCPU -benchtime 100000x -count 3
func BenchmarkServedStatusReadCPU(b *testing.B) {
	log := slog.New(slog.DiscardHandler)
	m := benchSessions(b, log)
	gw, err := api.New(api.Config{Token: token, Sessions: m, Reader: m, Activity: &activity{active: map[string]bool{"shop_1": true}},
		Logger: log, RateLimit: api.RateLimit{PerSecond: 1e12, Burst: 1e9}})
	if err != nil {
		b.Fatal(err)
	}
	// The floor's answer: a fixed JSON as long as the gateway's answer to this read.
	rec := &benchWriter{h: http.Header{}}
	req := newStatusRequest()
	gw.ServeHTTP(rec, req)
	body := make([]byte, rec.n)
	for i := range body {
		body[i] = 'x'
	}
	length := fmt.Sprint(len(body))
	fixed := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h["Content-Type"] = []string{"application/json"}
		h["Content-Length"] = []string{length}
		_, _ = w.Write(body)
	})
	for _, tc := range []struct {
		name   string
		server func(addr string) server
	}{
		{"floor", func(string) server { return &http.Server{Handler: fixed, ReadHeaderTimeout: 10 * time.Second} }},
		{"timeouts", func(addr string) server { return api.NewServer(addr, fixed, log) }},
		{"gateway", func(addr string) server { return api.NewServer(addr, gw, log) }},
		{"lean-floor", func(addr string) server { return &http1.Server{Fallback: api.NewServer(addr, fixed, log)} }},
		{"lean-gateway", func(addr string) server { return &http1.Server{Fallback: api.NewServer(addr, gw, log)} }},
	} {
		b.Run(tc.name, func(b *testing.B) { benchmarkServedCPU(b, tc.server) })
	}
}

func newStatusRequest() *http.Request {
	req, _ := http.NewRequest(http.MethodGet, "/sessions/shop_1", nil)
	req.RemoteAddr = "127.0.0.1:40000"
	req.Header.Set("Authorization", "Bearer "+token)
	return req
}

// server is what serves the benchmark's connections: an *http.Server or an *http1.Server.
type server interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
}

// benchmarkServedCPU serves b.N status reads from 64 keep-alive connections and reports the
// process's CPU per read.
func benchmarkServedCPU(b *testing.B, newServer func(addr string) server) {
	const conns = 64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := newServer(ln.Addr().String())
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	request := []byte("GET /sessions/shop_1 HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + token + "\r\n\r\n")
	type client struct {
		c net.Conn
		r *bufio.Reader
	}
	poll := func(cl client) error {
		if _, err := cl.c.Write(request); err != nil {
			return err
		}
		resp, err := http.ReadResponse(cl.r, nil)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("answered %d", resp.StatusCode)
		}
		return err
	}
	clients := make([]client, conns)
	for i := range clients {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		clients[i] = client{c, bufio.NewReader(c)}
		if err := poll(clients[i]); err != nil { // warm-up
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	before := cpuTime(b)
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i, cl := range clients {
		n := b.N / conns
		if i < b.N%conns {
			n++
		}
		wg.Go(func() {
			for range n {
				if err := poll(cl); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	used := cpuTime(b) - before
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(used.Microseconds())/float64(b.N), "cpu-us/op")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
