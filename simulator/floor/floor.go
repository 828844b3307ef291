// Package floor is the bare net/http server the gateway's status API is compared with: it answers
// every request with one fixed JSON body of the same size as the gateway's status answer, and
// does nothing else. The CPU it spends per request under the same poll workload, on the same CPU
// set, is the floor under the gateway's own CPU per API request (`kind: floor` in a bench matrix).
package floor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// StatusSize is the size in bytes of the gateway's answer to GET /sessions/{id} for a connected
// session (measured by hand: issue 18), the default size of the floor's answer.
const StatusSize = 174

// Body returns a JSON object of exactly size bytes shaped like a status answer (size >= 64).
func Body(size int) []byte {
	const head = `{"session_id":"floor-0001","status":"connected","connected":true,"pad":"`
	const tail = `"}`
	pad := max(size-len(head)-len(tail), 0)
	return []byte(head + strings.Repeat("x", pad) + tail)
}

// Handler answers every request with body (200, application/json).
func Handler(body []byte) http.Handler {
	length := strconv.Itoa(len(body))
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h["Content-Type"] = []string{"application/json"}
		h["Content-Length"] = []string{length}
		_, _ = w.Write(body)
	})
}

// Serve answers on ln until ctx ends, then shuts down within a second.
func Serve(ctx context.Context, ln net.Listener, size int) error {
	srv := &http.Server{Handler: Handler(Body(size)), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("floor: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("floor: %w", err)
	}
	return nil
}
