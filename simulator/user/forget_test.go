package user

import (
	"fmt"
	"net"
	"testing"
	"time"

	"wagate/simulator/metrics"
)

func TestAForgottenSessionIsNotComparedAtTheEnd(t *testing.T) {
	l := NewLedger(metrics.NewRegistry(nil), QRTiming{First: time.Minute, Next: 20 * time.Second, Codes: 6}, nil)
	l.Started("kept", "1", time.Unix(0, 0), nil)
	l.Started("never-reached", "2", time.Unix(0, 0), nil)
	l.Forget("never-reached")
	l.Forget("unknown") // no-op
	truth := l.Finish(map[string]string{"kept": StatusPending}, nil, time.Unix(10, 0))
	if truth.Sessions != 1 || truth.Lost != 0 {
		t.Fatalf("sessions %d lost %d, want 1 and 0", truth.Sessions, truth.Lost)
	}
	if ids := l.IDs(); len(ids) != 1 || ids[0] != "kept" {
		t.Fatalf("IDs = %v", ids)
	}
}

func TestARefusedConnectionIsUnreached(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = net.Dial("tcp", addr)
	if err == nil {
		t.Skip("something listens on the closed port")
	}
	if !unreached(fmt.Errorf("POST start: %w", err)) {
		t.Fatalf("unreached(%v) = false", err)
	}
	if unreached(fmt.Errorf("POST start: 503")) {
		t.Fatal("a gateway answer counted as unreached")
	}
}
