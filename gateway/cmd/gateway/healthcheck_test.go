package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestHealthcheckURL(t *testing.T) {
	cases := []struct {
		args []string
		addr string
		want string
		bad  bool
	}{
		{addr: "", want: "http://127.0.0.1:4000/readyz"},
		{addr: ":8080", want: "http://127.0.0.1:8080/readyz"},
		{addr: "0.0.0.0:4001", want: "http://127.0.0.1:4001/readyz"},
		{addr: "10.0.0.5:4000", want: "http://10.0.0.5:4000/readyz"},
		{addr: "[::]:4000", want: "http://127.0.0.1:4000/readyz"},
		{args: []string{"http://gw:4000/healthz"}, addr: ":1", want: "http://gw:4000/healthz"},
		{addr: "4000", bad: true},
		{args: []string{"a", "b"}, bad: true},
	}
	for _, c := range cases {
		got, err := healthcheckURL(c.args, c.addr)
		if (err != nil) != c.bad || got != c.want {
			t.Errorf("healthcheckURL(%q, %q) = %q, %v; want %q (error: %v)", c.args, c.addr, got, err, c.want, c.bad)
		}
	}
}

// The probe passes on 200 and fails on a 503 (not ready) and on a refused connection.
func TestHealthcheckExitCodes(t *testing.T) {
	code := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(code)
	}))
	if got := healthcheck([]string{srv.URL + "/readyz"}); got != 0 {
		t.Fatalf("ready: exit %d", got)
	}
	code = http.StatusServiceUnavailable
	if got := healthcheck([]string{srv.URL + "/readyz"}); got != 1 {
		t.Fatalf("not ready: exit %d", got)
	}
	srv.Close()
	if got := healthcheck([]string{srv.URL + "/readyz"}); got != 1 {
		t.Fatalf("refused: exit %d", got)
	}
}
