package scenario

import (
	"slices"
	"strings"
	"testing"
)

// gateway.gogc, gateway.gomemlimit and gateway.gomaxprocs set the Go runtime of the gateway processes a run starts,
// in the environment the run gives them; what the Go runtime would not read is refused at load.
func TestTheGatewaysGoRuntimeSettings(t *testing.T) {
	const head = "scenarios:\n  s: {executor: constant-vus, vus: 1, duration: 1m}\n"
	for _, tc := range []struct {
		name, yaml string
		sets       []string // the environment the gateways get
		set        []string // -set overrides
		want       string   // "" means valid
	}{
		{"Go's defaults unless given", "", nil, nil, ""},
		{"a GC target", "gateway: {gogc: 50}\n", []string{"GOGC=50"}, nil, ""},
		{"a GC target quoted", "gateway: {gogc: \"50\"}\n", []string{"GOGC=50"}, nil, ""},
		{"GC off with a memory limit", "gateway: {gogc: off, gomemlimit: 3GiB}\n", []string{"GOGC=off", "GOMEMLIMIT=3GiB"}, nil, ""},
		{"a memory limit in bytes", "gateway: {gomemlimit: 1000000000}\n", []string{"GOMEMLIMIT=1000000000"}, nil, ""},
		{"beside the gateway's settings and replicas", "gateway: {mode: batch, gogc: 50, replicas: 2, redis: server}\n", []string{"GOGC=50"}, nil, ""},
		{"two threads on the gateway's core", "gateway: {gomaxprocs: 2}\n", []string{"GOMAXPROCS=2"}, nil, ""},
		{"every setting, in a fixed order", "gateway: {gomaxprocs: 2, gomemlimit: 1GiB, gogc: 50}\n", []string{"GOGC=50", "GOMEMLIMIT=1GiB", "GOMAXPROCS=2"}, nil, ""},
		{"threads given by -set", "", []string{"GOMAXPROCS=3"}, []string{"gateway.gomaxprocs=3"}, ""},
		{"no threads", "gateway: {gomaxprocs: 0}\n", nil, nil, "gateway.gomaxprocs: \"0\": use a whole number of threads from 1 to 64"},
		{"too many threads", "gateway: {gomaxprocs: 65}\n", nil, nil, "gateway.gomaxprocs: \"65\""},
		{"threads as a word", "gateway: {gomaxprocs: auto}\n", nil, nil, "gateway.gomaxprocs: \"auto\""},
		{"an external gateway's threads", "gateway: {url: \"http://127.0.0.1:1\", token: t, gomaxprocs: 2}\n", nil, nil, "gateway.gomaxprocs: an external gateway (gateway.url) runs with its own environment"},
		{"given by -set", "", []string{"GOGC=25"}, []string{"gateway.gogc=25"}, ""},
		{"-set over the file", "gateway: {gogc: 50}\n", []string{"GOGC=200"}, []string{"gateway.gogc=200"}, ""},
		{"a GC target of 0 collects continuously", "gateway: {gogc: 0}\n", nil, nil, "gateway.gogc: \"0\": use a GC target percentage of at least 1"},
		{"a negative GC target", "gateway: {gogc: -1}\n", nil, nil, "gateway.gogc: \"-1\": use a GC target percentage of at least 1"},
		{"a GC target in percent", "gateway: {gogc: 50%}\n", nil, nil, "gateway.gogc: \"50%\""},
		{"a memory limit in GB", "gateway: {gomemlimit: 3GB}\n", nil, nil, "gateway.gomemlimit: \"3GB\": use a memory limit such as 3GiB"},
		{"a memory limit without a number", "gateway: {gomemlimit: GiB}\n", nil, nil, "gateway.gomemlimit: \"GiB\""},
		{"a fractional memory limit", "gateway: {gomemlimit: 1.5GiB}\n", nil, nil, "gateway.gomemlimit: \"1.5GiB\""},
		{"an external gateway's runtime", "gateway: {url: \"http://127.0.0.1:1\", token: t, gogc: 50}\n", nil, nil, "gateway.gogc: an external gateway (gateway.url) runs with its own environment"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse("f.yaml", []byte(head+tc.yaml), tc.set)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("accepted: %+v", f.Gateway.GoRuntime)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("got %v, want it to say %q", err, tc.want)
			case tc.want == "" && !slices.Equal(f.Gateway.GoRuntime.Env(), tc.sets):
				t.Fatalf("the gateways' Go runtime environment is %q, want %q", f.Gateway.GoRuntime.Env(), tc.sets)
			}
		})
	}
}
