package fakelaravel

import (
	"context"
	"errors"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"
)

// eventually polls cond every 10 ms for up to 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 500 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("never: %s", what)
}

func TestDownWindowRefusesConnectionsThenListensAgain(t *testing.T) {
	srv, err := New(t.Context(), Config{Token: testToken, Capacity: fastCapacity, DBPath: t.TempDir() + "/db.sqlite"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()

	client := &http.Client{Timeout: time.Second}
	ac := NewAdminClient("http://"+addr, testToken, client)
	eventually(t, "server up", func() bool { return ac.Healthy(t.Context()) == nil })
	// A keep-alive connection opened before the window must not survive it either.
	if err := ac.SetFaults(t.Context(), Faults{DownWindows: []DownWindow{{StartAfterMS: 100, DurationMS: 400}}}); err != nil {
		t.Fatal(err)
	}
	refused := func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return false
		}
		return errors.Is(err, syscall.ECONNREFUSED)
	}
	eventually(t, "connections refused", refused)
	if err := ac.Healthy(t.Context()); err == nil {
		t.Fatal("keep-alive connection survived the down window")
	}
	eventually(t, "listening again", func() bool { return ac.Healthy(t.Context()) == nil })
	if st, err := ac.GetStats(t.Context()); err != nil || st.Down {
		t.Fatalf("stats after the window: down=%v err=%v", st.Down, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no graceful shutdown")
	}
}

func TestParseDownWindows(t *testing.T) {
	w, err := ParseDownWindows("10s+5s, 1m+500ms")
	if err != nil || len(w) != 2 || w[0] != (DownWindow{10000, 5000}) || w[1] != (DownWindow{60000, 500}) {
		t.Fatalf("got %v %v", w, err)
	}
	for _, bad := range []string{"10s", "x+1s", "1s+y"} {
		if _, err := ParseDownWindows(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
