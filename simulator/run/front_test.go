package run

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The replicas' front sends each request to the next replica in rotation with its body, skips
// a replica the simulator took out of rotation, and passes a request refused at the dial (a
// replica that just died) to the next one.
func TestTheFrontSpreadsRequestsOverTheReplicasInRotation(t *testing.T) {
	cw := &clusterWorld{}
	got := map[string][]string{}
	for _, id := range []string{"gateway-1", "gateway-2", "gateway-3"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			got[id] = append(got[id], r.Method+" "+r.URL.Path+" "+string(b))
			w.Header().Set("X-Replica", id)
			w.WriteHeader(http.StatusAccepted)
		}))
		t.Cleanup(srv.Close)
		cw.replicas = append(cw.replicas, &replica{id: id, addr: strings.TrimPrefix(srv.URL, "http://")})
	}
	f, err := startFront(cw)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.close)
	call := func(body string) (status int, replica string) {
		t.Helper()
		resp, err := http.Post(f.url()+"/sessions/s1/start", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("X-Replica")
	}
	seen := map[string]int{}
	for range 6 {
		status, rp := call(`{"n":1}`)
		if status != http.StatusAccepted {
			t.Fatalf("status %d through the front", status)
		}
		seen[rp]++
	}
	for _, id := range []string{"gateway-1", "gateway-2", "gateway-3"} {
		if seen[id] != 2 {
			t.Errorf("%s answered %d of 6 requests, want 2 (round robin): %v", id, seen[id], seen)
		}
		if len(got[id]) > 0 && got[id][0] != `POST /sessions/s1/start {"n":1}` {
			t.Errorf("%s received %q", id, got[id][0])
		}
	}

	// Out of rotation: never called.
	cw.setDown(cw.replicas[1], true, nil)
	clear(seen)
	for range 4 {
		_, rp := call("")
		seen[rp]++
	}
	if seen["gateway-2"] != 0 || seen["gateway-1"] != 2 || seen["gateway-3"] != 2 {
		t.Errorf("with gateway-2 out of rotation: %v", seen)
	}

	// Dead but still in rotation (its port refuses connections): the next replica answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	cw.replicas[1].addr = dead
	cw.setDown(cw.replicas[1], false, nil)
	for range 6 {
		if status, rp := call("x"); status != http.StatusAccepted || rp == "gateway-2" {
			t.Fatalf("with gateway-2 dead: status %d from %q", status, rp)
		}
	}

	// Nobody in rotation: 503.
	for _, rp := range cw.replicas {
		cw.setDown(rp, true, nil)
	}
	if status, _ := call(""); status != http.StatusServiceUnavailable {
		t.Errorf("no replica in rotation: status %d, want 503", status)
	}
}
