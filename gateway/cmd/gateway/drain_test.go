package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestDrainURL(t *testing.T) {
	cases := []struct {
		args []string
		addr string
		want string
		bad  bool
	}{
		{addr: "", want: "http://127.0.0.1:4000/cluster/drain"},
		{addr: "0.0.0.0:4001", want: "http://127.0.0.1:4001/cluster/drain"},
		{addr: "10.0.0.5:4000", want: "http://10.0.0.5:4000/cluster/drain"},
		{args: []string{"http://gw-3:4000/cluster/drain"}, addr: ":1", want: "http://gw-3:4000/cluster/drain"},
		{addr: "4000", bad: true},
		{args: []string{"a", "b"}, bad: true},
	}
	for _, c := range cases {
		got, err := drainURL(c.args, c.addr)
		if (err != nil) != c.bad || got != c.want {
			t.Errorf("drainURL(%q, %q) = %q, %v; want %q (error: %v)", c.args, c.addr, got, err, c.want, c.bad)
		}
	}
}

// `gateway drain` posts with the API token of the replica's own settings and exits 0 on the
// gateway's 200, 1 on a refusal (409 outside cluster mode, 401) or a refused connection, 2 when
// the settings do not load.
func TestDrainCommandPostsWithTheReplicasOwnTokenAndExitsAsTheGatewayAnswered(t *testing.T) {
	const token = "drain-command-test-token-0123456789"
	code := http.StatusOK
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(code)
		_, _ = w.Write([]byte(`{"drained":true}`))
	}))
	t.Setenv("WAGATE_API_TOKEN", token)
	t.Setenv("WAGATE_LARAVEL_URL", "http://127.0.0.1:1")
	t.Setenv("WAGATE_LARAVEL_TOKEN", "laravel-token-for-the-drain-test")
	if exit := drain([]string{srv.URL + "/cluster/drain"}); exit != 0 {
		t.Fatalf("drained: exit %d (requests %v)", exit, got)
	}
	if want := "POST /cluster/drain Bearer " + token; len(got) != 1 || got[0] != want {
		t.Fatalf("requests %q, want [%q]", got, want)
	}
	code = http.StatusConflict
	if exit := drain([]string{srv.URL + "/cluster/drain"}); exit != 1 {
		t.Fatalf("409: exit %d", exit)
	}
	t.Setenv("WAGATE_API_TOKEN", token+"-other")
	if exit := drain([]string{srv.URL + "/cluster/drain"}); exit != 1 {
		t.Fatalf("401: exit %d", exit)
	}
	srv.Close()
	if exit := drain([]string{srv.URL + "/cluster/drain"}); exit != 1 {
		t.Fatalf("refused connection: exit %d", exit)
	}
	t.Setenv("WAGATE_API_TOKEN", "short")
	if exit := drain(nil); exit != 2 {
		t.Fatalf("invalid settings: exit %d", exit)
	}
}
