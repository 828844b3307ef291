package api_test

import (
	"testing"
	"time"

	"wagate/gateway/api"
)

// The API server bounds every phase of a connection and the header size, so a slow or idle client
// cannot hold a connection (and its goroutine) forever; the hostile-client test shows them at work.
func TestTheServerBoundsEveryPhaseOfAConnection(t *testing.T) {
	s := api.NewServer("127.0.0.1:0", nil, nil)
	for name, d := range map[string]time.Duration{
		"ReadHeaderTimeout": s.ReadHeaderTimeout, "ReadTimeout": s.ReadTimeout,
		"WriteTimeout": s.WriteTimeout, "IdleTimeout": s.IdleTimeout,
	} {
		if d <= 0 || d > 2*time.Minute {
			t.Errorf("%s = %v, want set and at most 2 min", name, d)
		}
	}
	if s.ReadHeaderTimeout > 10*time.Second {
		t.Errorf("ReadHeaderTimeout %v lets slowloris connections live long", s.ReadHeaderTimeout)
	}
	if s.MaxHeaderBytes <= 0 || s.MaxHeaderBytes > 1<<20 {
		t.Errorf("MaxHeaderBytes = %d, want set and at most 1 MiB", s.MaxHeaderBytes)
	}
	if api.MaxBodyBytes <= 0 || api.MaxBodyBytes > 1<<20 {
		t.Errorf("MaxBodyBytes = %d", api.MaxBodyBytes)
	}
}
