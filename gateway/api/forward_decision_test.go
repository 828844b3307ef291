package api

import (
	"errors"
	"log/slog"
	"testing"
)

// Where a request for one session is served, from where its shard is held and whether the request
// already made its one hop.
func TestRouteDecision(t *testing.T) {
	const holder = "http://10.0.0.2:4000"
	cases := []struct {
		name   string
		loc    Location
		err    error
		hopped bool
		want   routeAction
		target string
	}{
		{name: "held here", loc: Location{Self: true}, want: serveHere},
		{name: "held here, forwarded by a peer", loc: Location{Self: true}, hopped: true, want: serveHere},
		{name: "held by another replica", loc: Location{URL: holder}, want: forwardToHolder, target: holder},
		{name: "held elsewhere but already forwarded once: no second hop", loc: Location{URL: holder}, hopped: true, want: retryLater},
		{name: "moving away from here", loc: Location{Self: true, Moving: true}, want: retryLater},
		{name: "moving between others", loc: Location{URL: holder, Moving: true}, want: retryLater},
		{name: "held by nobody", loc: Location{}, want: retryLater},
		{name: "held by nobody, forwarded", loc: Location{}, hopped: true, want: retryLater},
		{name: "locator failed", loc: Location{Self: true}, err: errors.New("no table yet"), want: retryLater},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := decideRoute(c.loc, c.err, c.hopped)
			if d.action != c.want || d.target != c.target {
				t.Fatalf("decideRoute(%+v, %v, hopped=%v) = %v %q, want %v %q", c.loc, c.err, c.hopped, d.action, d.target, c.want, c.target)
			}
			if (d.action == retryLater) != (d.reason != "") {
				t.Fatalf("a retry needs a reason for the client, nothing else has one: %+v", d)
			}
		})
	}
}

func TestForwarderRefusesUnusableHolderURLs(t *testing.T) {
	f := newForwarder(slog.Default())
	for _, raw := range []string{"", "10.0.0.2:4000", "ftp://h/", "http://", "://x"} {
		if _, err := f.target(raw); err == nil {
			t.Errorf("%q accepted as a holder URL", raw)
		}
	}
	u, err := f.target("http://10.0.0.2:4000")
	if err != nil || u.Host != "10.0.0.2:4000" {
		t.Fatalf("%v %v", u, err)
	}
}
