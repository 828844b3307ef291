package user

import (
	"fmt"
	"net"
	"testing"
)

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
	if !Unreached(fmt.Errorf("POST start: %w", err)) {
		t.Fatalf("Unreached(%v) = false", err)
	}
	if Unreached(fmt.Errorf("POST start: 503")) {
		t.Fatal("a gateway answer counted as unreached")
	}
}
