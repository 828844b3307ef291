package http1_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"wagate/gateway/http1"
)

// serve starts an http1.Server for h on a loopback port and returns its address; the server
// shuts down at the end of the test.
func serve(t *testing.T, h http.Handler, tune func(*http.Server)) (string, *http1.Server) {
	t.Helper()
	fb := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second}
	if tune != nil {
		tune(fb)
	}
	srv := &http1.Server{Fallback: fb}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return ln.Addr().String(), srv
}

// serveNetHTTP starts a plain net/http server for h: the reference the lean path is held to.
func serveNetHTTP(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := &http.Server{Handler: h}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// exchange sends raw on one connection and reads n answers from it.
func exchange(t *testing.T, addr, raw string, n int) []*answer {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var out []*answer
	var method *http.Request // ReadResponse needs to know a HEAD's answer has no body
	if strings.HasPrefix(raw, "HEAD ") {
		method = &http.Request{Method: http.MethodHead}
	}
	for range n {
		resp, err := http.ReadResponse(br, method)
		if err != nil {
			t.Fatalf("reading answer %d of %q: %v", len(out)+1, raw, err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("reading answer %d's body: %v", len(out)+1, err)
		}
		resp.Body.Close()
		out = append(out, newAnswer(resp, body))
	}
	return out
}

// answer is what a client sees of a response, Date aside.
type answer struct {
	Status           int
	Header           http.Header
	Body             string
	ContentLength    int64
	TransferEncoding []string
	Close            bool
}

func newAnswer(resp *http.Response, body []byte) *answer {
	h := resp.Header.Clone()
	if _, err := http.ParseTime(h.Get("Date")); err != nil {
		h.Set("Date", "unparsable: "+h.Get("Date"))
	} else {
		h.Del("Date")
	}
	return &answer{resp.StatusCode, h, string(body), resp.ContentLength, resp.TransferEncoding, resp.Close}
}

// The lean path answers what net/http would: for each handler, the same status, header (Date
// aside), body, framing and keep-alive as a plain net/http server gives the same request.
func TestTheLeanPathAnswersAsNetHTTPDoes(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 1000) // 16,000 bytes: streamed
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"a JSON answer with its length", func(w http.ResponseWriter, _ *http.Request) {
			w.Header()["Content-Type"] = []string{"application/json"}
			w.Header()["Content-Length"] = []string{"11"}
			_, _ = io.WriteString(w, `{"ok":true}`)
		}},
		{"a body without a length or a type", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "<html><body>hello</body></html>")
		}},
		{"no body at all", func(http.ResponseWriter, *http.Request) {}},
		{"an error status", func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "not found", http.StatusNotFound)
		}},
		{"204 with a body written", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusNoContent)
			_, _ = io.WriteString(w, "dropped")
		}},
		{"304", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("ETag", `"v1"`)
			w.WriteHeader(http.StatusNotModified)
		}},
		{"an unknown status", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(599) }},
		{"a long body without a length", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, big)
		}},
		{"a long body with its length", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", fmt.Sprint(len(big)))
			_, _ = io.WriteString(w, big)
		}},
		{"flushed in parts", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "part one,")
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, "part two")
		}},
		{"a header changed after WriteHeader", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("X-Before", "1")
			w.WriteHeader(http.StatusAccepted)
			w.Header().Set("X-After", "2")
		}},
		{"a newline in a header value", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("X-Bad", "a\r\nSet-Cookie: x=1")
		}},
		{"an invalid Content-Length", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", "abc")
			_, _ = io.WriteString(w, "hi")
		}},
		{"the handler asks to close", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Connection", "close")
			_, _ = io.WriteString(w, "bye")
		}},
		{"the request as the handler sees it", func(w http.ResponseWriter, r *http.Request) {
			_, _ = fmt.Fprintf(w, "%s %s %q %q %q %s %d %v", r.Method, r.URL.Path, r.URL.RawQuery,
				r.Host, r.Header, r.Proto, r.ContentLength, r.Close)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lean, _ := serve(t, tc.handler, nil)
			ref := serveNetHTTP(t, tc.handler)
			req := "GET /sessions/a?x=1 HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer t\r\nAccept: a\r\naccept: b\r\n\r\n"
			got, want := exchange(t, lean, req, 1)[0], exchange(t, ref, req, 1)[0]
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("lean path:\n%+v\nnet/http:\n%+v", got, want)
			}
		})
	}
}

// Requests the lean path does not take (a body, HEAD, a malformed head, a head larger than its
// buffer) are answered by net/http, on the same connection, exactly as net/http alone answers.
func TestOtherRequestsAreAnsweredByNetHTTP(t *testing.T) {
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		_, _ = fmt.Fprintf(w, "%s %s %q %d", r.Method, r.URL.Path, body, len(r.Header.Get("X-Big")))
	})
	bigHeader := "X-Big: " + strings.Repeat("b", 6000) + "\r\n"
	for _, tc := range []struct {
		name, raw string
		answers   int
	}{
		{"a POST with a body", "POST /sessions HTTP/1.1\r\nHost: gw\r\nContent-Length: 2\r\n\r\n{}", 1},
		{"a chunked POST", "POST /s HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n", 1},
		{"a GET after a POST", "POST /s HTTP/1.1\r\nHost: gw\r\nContent-Length: 1\r\n\r\nxGET /after HTTP/1.1\r\nHost: gw\r\n\r\n", 2},
		{"a POST after a GET", "GET /before HTTP/1.1\r\nHost: gw\r\n\r\nPOST /s HTTP/1.1\r\nHost: gw\r\nContent-Length: 1\r\n\r\ny", 2},
		{"HEAD", "HEAD /h HTTP/1.1\r\nHost: gw\r\n\r\n", 1},
		{"no Host", "GET / HTTP/1.1\r\n\r\n", 1},
		{"a malformed header", "GET / HTTP/1.1\r\nHost: gw\r\nBad Name: x\r\n\r\n", 1},
		{"HTTP/1.0", "GET /old HTTP/1.0\r\n\r\n", 1},
		{"a head larger than the lean buffer", "GET /big HTTP/1.1\r\nHost: gw\r\n" + bigHeader + "\r\n", 1},
		{"Connection: close", "GET /last HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lean, _ := serve(t, echo, nil)
			ref := serveNetHTTP(t, echo)
			got, want := exchange(t, lean, tc.raw, tc.answers), exchange(t, ref, tc.raw, tc.answers)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("lean server:\n%+v\nnet/http:\n%+v", got, want)
			}
		})
	}
}

// Pipelined requests, and a head that arrives in pieces, are answered in order on one connection.
func TestPipelinedAndSplitHeadsAreAnsweredInOrder(t *testing.T) {
	var served atomic.Int32
	addr, _ := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		_, _ = io.WriteString(w, r.URL.Path)
	}), nil)
	raw := "GET /1 HTTP/1.1\r\nHost: gw\r\n\r\nGET /2 HTTP/1.1\r\nHost: gw\r\n\r\nGET /3 HTTP/1.1\r\nHost: gw\r\n\r\n"
	for i, a := range exchange(t, addr, raw, 3) {
		if want := fmt.Sprintf("/%d", i+1); a.Body != want {
			t.Fatalf("answer %d = %q, want %q", i+1, a.Body, want)
		}
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, part := range []string{"GET /split", " HTTP/1.1\r\nHo", "st: gw\r\n", "\r\n"} {
		_, _ = io.WriteString(c, part)
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "/split" || served.Load() != 4 {
		t.Fatalf("split head: answer %q after %d requests served", body, served.Load())
	}
}

// A client connection that never sent a request does not hold Shutdown (net/http alone counts
// such a connection as active for 5 s; clients preconnect routinely), while a request in flight
// does and is answered; idle kept-alive connections are closed.
func TestShutdownWaitsForRequestsInFlightOnly(t *testing.T) {
	release := make(chan struct{})
	fb := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		_, _ = io.WriteString(w, "ok")
	})}
	srv := &http1.Server{Fallback: fb}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	addr := ln.Addr().String()

	silent, err := net.Dial("tcp", addr) // preconnected, never used
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	idle := exchangeKeep(t, addr, "GET /fast HTTP/1.1\r\nHost: gw\r\n\r\n")
	defer idle.Close()
	slow := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/slow")
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		slow <- err
	}()
	time.Sleep(200 * time.Millisecond) // all accepted, the slow request in its handler

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(ctx) }()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) with a request in flight", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	if err := <-slow; err != nil {
		t.Fatalf("the request in flight was not answered: %v", err)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve returned %v, want ErrServerClosed", err)
	}
	for name, c := range map[string]net.Conn{"silent": silent, "idle": idle} {
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Fatalf("the %s connection: read %v, want EOF (closed by the server)", name, err)
		}
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Fatal("the listener still accepts after Shutdown")
	}
}

// exchangeKeep sends one request, reads its answer and returns the open connection.
func exchangeKeep(t *testing.T, addr, raw string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(c, raw)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.ReadAll(resp.Body)
	return c
}

// An idle kept-alive connection closes after the fallback's IdleTimeout; a connection that sent
// part of a head and stalled gets, after ReadHeaderTimeout, what net/http gives it (a 400 and the
// close).
func TestIdleAndStalledConnectionsAreClosed(t *testing.T) {
	timeouts := func(s *http.Server) { s.IdleTimeout, s.ReadHeaderTimeout = 200*time.Millisecond, 200*time.Millisecond }
	nothing := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	addr, _ := serve(t, nothing, timeouts)
	ref := &http.Server{Handler: nothing}
	timeouts(ref)
	refLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = ref.Serve(refLn) }()
	defer ref.Close()

	idle := exchangeKeep(t, addr, "GET / HTTP/1.1\r\nHost: gw\r\n\r\n")
	defer idle.Close()
	_ = idle.SetReadDeadline(time.Now().Add(3 * time.Second))
	if b, err := io.ReadAll(idle); err != nil || len(b) > 0 {
		t.Fatalf("the idle connection: read %q, %v; want EOF after IdleTimeout", b, err)
	}
	stalled := func(addr string) string {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHo")
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		b, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("the stalled connection was not closed: %v", err)
		}
		return string(b)
	}
	if got, want := stalled(addr), stalled(refLn.Addr().String()); got != want {
		t.Fatalf("a stalled head: lean server answers %q, net/http %q", got, want)
	}
}

// A handler's panic closes its connection without an answer, is logged, and the server goes on.
func TestAPanickingHandlerClosesItsConnectionOnly(t *testing.T) {
	var logged strings.Builder
	addr, _ := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			panic("boom")
		}
		_, _ = io.WriteString(w, "fine")
	}), func(s *http.Server) { s.ErrorLog = newLog(&logged) })
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "GET /panic HTTP/1.1\r\nHost: gw\r\n\r\n")
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if n, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("after a panic: read %d bytes, %v; want EOF", n, err)
	}
	if a := exchange(t, addr, "GET /ok HTTP/1.1\r\nHost: gw\r\n\r\n", 1)[0]; a.Body != "fine" {
		t.Fatalf("after a panic the server answers %q", a.Body)
	}
	if !strings.Contains(logged.String(), "panic serving") || !strings.Contains(logged.String(), "boom") {
		t.Fatalf("the panic was not logged: %q", logged.String())
	}
}

func newLog(w io.Writer) *log.Logger { return log.New(w, "", 0) }
