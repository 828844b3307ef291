package run

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
	"time"
)

// front is the round-robin HTTP front of a cluster run's replicas (what haproxy or a Kubernetes
// Service is in production): every request goes to the next replica in rotation; one refused
// at the dial (the replica just died) goes to the next, since nothing of it was sent.
type front struct {
	cw   *clusterWorld
	srv  *http.Server
	ln   net.Listener
	tr   *http.Transport
	next atomic.Uint64
}

// maxFrontBody bounds a request body the front buffers (to send it again to another replica).
const maxFrontBody = 8 << 20

func startFront(cw *clusterWorld) (*front, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("the replicas' front: %w", err)
	}
	f := &front{cw: cw, ln: ln, tr: &http.Transport{
		MaxIdleConns:        maxGatewayConns,
		MaxIdleConnsPerHost: maxGatewayConns,
		IdleConnTimeout:     90 * time.Second,
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
	}}
	f.srv = &http.Server{Handler: f, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = f.srv.Serve(ln) }()
	return f, nil
}

func (f *front) url() string { return "http://" + f.ln.Addr().String() }

func (f *front) close() {
	_ = f.srv.Close()
	f.tr.CloseIdleConnections()
}

// ServeHTTP passes the request to the next replica in rotation.
func (f *front) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(io.LimitReader(req.Body, maxFrontBody+1))
		if err != nil || len(b) > maxFrontBody {
			http.Error(w, "front: request body unreadable or too large", http.StatusBadRequest)
			return
		}
		body = b
	}
	up := f.cw.up()
	if len(up) == 0 {
		http.Error(w, "front: no replica in rotation", http.StatusServiceUnavailable)
		return
	}
	start := f.next.Add(1)
	var lastErr error
	for i := range len(up) {
		rp := up[(int(start)+i)%len(up)]
		out := req.Clone(req.Context())
		out.RequestURI = ""
		out.URL.Scheme, out.URL.Host = "http", rp.addr
		out.Host = rp.addr
		out.Body = io.NopCloser(bytes.NewReader(body))
		out.ContentLength = int64(len(body))
		if len(body) == 0 {
			out.Body = nil
		}
		resp, err := f.tr.RoundTrip(out)
		if err != nil {
			lastErr = err
			if refusedAtDial(err) {
				continue
			}
			break
		}
		for k, vs := range resp.Header {
			w.Header()[k] = vs
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
		resp.Body.Close()
		return
	}
	http.Error(w, "front: "+lastErr.Error(), http.StatusBadGateway)
}

// refusedAtDial reports whether err is a connection that was never made (nothing was sent).
func refusedAtDial(err error) bool {
	var op *net.OpError
	return errors.Is(err, syscall.ECONNREFUSED) || (errors.As(err, &op) && op.Op == "dial")
}
