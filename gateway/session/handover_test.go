package session_test

import (
	"context"
	"testing"
	"time"
)

// A handover must not release a shard while a session of it is still connecting: that connect
// would log in after the new holder's and replace it (WhatsApp keeps the latest connection of a
// device), and the new holder would park the session as taken over by another client, leaving the
// device with nobody (cluster-failover at 300 and 500 users). Drop with flush (the handover's)
// returns only once the session's connect in flight returned, and its connection is closed.
func TestClusterAHandoverWaitsForAConnectStillInFlight(t *testing.T) {
	owner := newOwner()
	r := clusterRig(t, owner)
	defer r.close()
	owner.hold("s1", 500)
	gate := make(chan struct{})
	r.driver.ConnectGate = gate
	started := make(chan error, 1)
	go func() { _, err := r.m.Start(context.Background(), "s1"); started <- err }()
	deadline := time.Now().Add(5 * time.Second)
	for r.driver.Conn("s1") == nil {
		if time.Now().After(deadline) {
			t.Fatal("the start never opened a connection")
		}
		time.Sleep(time.Millisecond)
	}

	dropped := make(chan error, 1)
	go func() {
		_, err := r.m.Drop(context.Background(), func(id string) bool { return id == "s1" }, true)
		dropped <- err
	}()
	select {
	case err := <-dropped:
		t.Fatalf("the handover finished (err %v) while the session's connect was still in flight", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(gate) // the handshake completes
	select {
	case err := <-dropped:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the handover did not finish after the connect returned")
	}
	<-started
	if c := r.driver.Conn("s1"); !c.Released() {
		t.Fatal("the connection that finished connecting after the handover was kept")
	}
}
