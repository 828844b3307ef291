package app

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// A client connection that never sent a request does not hold the API server's shutdown (net/http
// counts it as active for 5 s), while a request in flight still does and is answered. Without
// closeSilentConnsOnShutdown, Shutdown with a 2 s deadline fails with the deadline exceeded.
func TestShutdownDoesNotWaitForAConnectionThatNeverSentARequest(t *testing.T) {
	release := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		_, _ = io.WriteString(w, "ok")
	})}
	closeSilentConnsOnShutdown(srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()

	silent, err := net.Dial("tcp", ln.Addr().String()) // preconnected, never used
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	slow := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/slow")
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		slow <- err
	}()
	time.Sleep(200 * time.Millisecond) // both connections accepted, the request in its handler

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
		t.Fatalf("Shutdown: %v (it waited for the connection that never sent a request)", err)
	}
	if _, err := silent.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("the silent connection: read %v, want EOF (closed by the server)", err)
	}
}
