package cache

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"wagate/gateway/laravel"
	"wagate/internal/redistest"
)

func TestQRCurrent(t *testing.T) {
	const now = 1_000_000
	cases := []struct {
		name string
		r    record
		want bool
	}{
		{"pending, code newer than the status", record{hasStatus: true, status: "pending", statusV: 4, statusExp: now + 1, hasQR: true, qr: "c", qrV: 5, qrExp: now + 1}, true},
		{"code without a known status", record{hasQR: true, qr: "c", qrV: 5, qrExp: now + 1}, true},
		{"code whose status expired from the cache", record{hasStatus: true, status: "connected", statusV: 9, statusExp: now, hasQR: true, qr: "c", qrV: 5, qrExp: now + 1}, true},
		{"connected since the code", record{hasStatus: true, status: "connected", statusV: 6, statusExp: now + 1, hasQR: true, qr: "c", qrV: 5, qrExp: now + 1}, false},
		{"expired since the code", record{hasStatus: true, status: "expired", statusV: 6, statusExp: now + 1, hasQR: true, qr: "c", qrV: 5, qrExp: now + 1}, false},
		{"a new pairing began after the code (pending again, no new code yet)", record{hasStatus: true, status: "pending", statusV: 7, statusExp: now + 1, hasQR: true, qr: "c", qrV: 5, qrExp: now + 1}, false},
		{"code past its expiry", record{hasStatus: true, status: "pending", statusV: 4, statusExp: now + 1, hasQR: true, qr: "c", qrV: 5, qrExp: now}, false},
		{"no code", record{hasStatus: true, status: "pending", statusV: 4, statusExp: now + 1}, false},
	}
	for _, c := range cases {
		if got := c.r.qrCurrent(now); got != c.want {
			t.Errorf("%s: qrCurrent = %v; want %v", c.name, got, c.want)
		}
	}
}

// Issue 19 #11: a replica that does not own a session served Laravel's stored QR, however old,
// as current for the whole QR TTL after its lookup.
func TestAReplicaServesLaravelsQROnlyForWhatIsLeftOfItsLifetime(t *testing.T) {
	b := redistest.Mini(t)
	clk := newClock()
	now := clk.Now()
	lv := &fakeLaravel{sessions: map[string]laravel.SessionInfo{
		"old": {SessionID: "old", EstadoQR: laravel.StatusPending, Enabled: true, QR: "2@old", StatusVersion: 4, QRVersion: 5,
			UpdatedAt: now.Add(-10 * time.Minute)},
		"fresh": {SessionID: "fresh", EstadoQR: laravel.StatusPending, Enabled: true, QR: "2@fresh", StatusVersion: 4, QRVersion: 5,
			UpdatedAt: now.Add(-10 * time.Second)},
		"connected": {SessionID: "connected", EstadoQR: laravel.StatusConnected, Enabled: true, QR: "2@paired", StatusVersion: 6, QRVersion: 5,
			UpdatedAt: now},
	}}
	c := newCache(t, b, lv, clk, "gw-replica")
	if s := mustState(t, c, "old"); s.QR != "" {
		t.Fatalf("a code Laravel stored 10 min ago is served as current: %+v", s)
	}
	s := mustState(t, c, "fresh")
	if s.QR != "2@fresh" || !s.QRExpiresAt.Equal(now.Add(-10*time.Second).Add(DefaultQRTTL)) {
		t.Fatalf("fresh code: %+v; want it until %s", s, now.Add(-10*time.Second).Add(DefaultQRTTL))
	}
	if s := mustState(t, c, "connected"); s.QR != "" || s.Status != laravel.StatusConnected {
		t.Fatalf("a connected session's pairing code is served: %+v", s)
	}
}

// hungRedis accepts connections and never answers.
func hungRedis(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}

// Issue 19 #11: the write-through before each append had no deadline of its own, so a hung Redis
// held every event for the Redis client's timeouts (here: none at all).
func TestTheWriteThroughOfAHungRedisIsBoundedAndTheEventStillHandedOn(t *testing.T) {
	c, err := New(context.Background(), redistest.Mini(t).Client(t), &fakeLaravel{}, Config{GatewayID: "gw",
		WriteTimeout: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	// Then Redis hangs: it accepts and never answers, and the client has no timeout of its own.
	hung := redis.NewClient(&redis.Options{Addr: hungRedis(t), Protocol: 2, ReadTimeout: -1, WriteTimeout: -1,
		MaxRetries: -1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = hung.Close() })
	c.rdb = hung
	next := &recordingDelivery{}
	done := make(chan error, 1)
	go func() {
		done <- c.WriteThrough(next).Deliver(context.Background(), statusEvent("s1", 1, laravel.StatusConnected))
	}()
	select {
	case err := <-done:
		if err != nil || len(next.got) != 1 {
			t.Fatalf("Deliver = %v, handed on %d; want the event handed on", err, len(next.got))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the write-through waited on a hung Redis without a deadline")
	}
	if c.Counters().WriteErrors != 1 {
		t.Fatalf("write errors %d; want the timeout counted", c.Counters().WriteErrors)
	}
}
