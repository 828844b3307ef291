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
	"testing"
	"time"

	"wagate/gateway/api"
	"wagate/gateway/http1"
)

// BenchmarkIdleKeepAliveConnection reports what one idle keep-alive connection of a poller costs
// the API server (the gateway's: http1.Server in front of api.NewServer, the real handler): goroutines, live heap and stack bytes
// after a GC, for 500 connections that each made one status read, over none. The clients are raw
// sockets with no goroutine and no buffer, so the process's difference is the server's. Under the
// seed's load every session has several pollers' connections: their cost is this, not the
// session's. Timings are meaningless: read the metrics.
//
//	go test ./gateway/api -run '^$' -bench IdleKeepAliveConnection -benchtime 1x
func BenchmarkIdleKeepAliveConnection(b *testing.B) {
	const conns = 500
	log := slog.New(slog.DiscardHandler)
	m := benchSessions(b, log)
	h, err := api.New(api.Config{Token: token, Sessions: m, Reader: m, Activity: &activity{active: map[string]bool{}},
		Logger: log, RateLimit: api.RateLimit{PerSecond: 1e12, Burst: 1e9}})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http1.Server{Fallback: api.NewServer(ln.Addr().String(), h, log)}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})

	request := "GET /sessions/shop_1 HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + token + "\r\n\r\n"
	poll := func(c net.Conn, r *bufio.Reader) error {
		if _, err := c.Write([]byte(request)); err != nil {
			return err
		}
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("read the status answer: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status read answered %d", resp.StatusCode)
		}
		return nil
	}
	// One warm-up connection: the server's first request allocates its pools.
	warm, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer warm.Close()
	if err := poll(warm, bufio.NewReader(warm)); err != nil {
		b.Fatal(err)
	}
	base := settleServer()
	clients := make([]net.Conn, 0, conns)
	defer func() {
		for _, c := range clients {
			_ = c.Close()
		}
	}()
	for range conns {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		clients = append(clients, c)
		// A reader on the stack of this loop only: it is garbage once the answer is read.
		if err := poll(c, bufio.NewReaderSize(c, 512)); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	var after serverCost
	for b.Loop() {
		after = settleServer()
	}
	b.StopTimer()
	b.ReportMetric(float64(after.goroutines-base.goroutines)/conns, "goroutines/conn")
	b.ReportMetric((float64(after.heap)-float64(base.heap))/conns, "heap-B/conn")
	b.ReportMetric((float64(after.stack)-float64(base.stack))/conns, "stack-B/conn")
}

type serverCost struct {
	goroutines  int
	heap, stack uint64
}

// settleServer lets the connections' goroutines park, collects garbage and reads the costs.
func settleServer() serverCost {
	time.Sleep(200 * time.Millisecond)
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return serverCost{goroutines: runtime.NumGoroutine(), heap: ms.HeapAlloc, stack: ms.StackInuse}
}
