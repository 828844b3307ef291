package scenario

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The fault schedule accepts every production fault the chaos campaign draws, and refuses what
// cannot be played, saying why.
func TestFaultVocabulary(t *testing.T) {
	const head = "scenarios:\n  s: {executor: constant-vus, vus: 1, duration: 1m}\n"
	for _, tc := range []struct {
		name, faults, want string // want "" means valid
	}{
		{"any 5xx", `[{at: 1s, duration: 2s, laravel: {errorRate: 1, errorStatus: 502}}]`, ""},
		{"401 (token rotated)", `[{at: 1s, duration: 2s, laravel: {errorRate: 1, errorStatus: 401}}]`, ""},
		{"429 with a Retry-After of a day", `[{at: 1s, duration: 2s, laravel: {errorRate: 1, errorStatus: 429, retryAfter: 24h}}]`, ""},
		{"307 to another host", `[{at: 1s, duration: 2s, laravel: {errorRate: 1, errorStatus: 307, redirectTo: "http://127.0.0.2:1/x"}}]`, ""},
		{"a redirect without a target", `[{at: 1s, laravel: {errorRate: 1, errorStatus: 302}}]`, "is a redirect; give redirectTo"},
		{"a target without a redirect", `[{at: 1s, laravel: {errorRate: 1, errorStatus: 500, redirectTo: "http://127.0.0.2:1/x"}}]`, "redirectTo: only with a 3xx"},
		{"a 2xx is no error", `[{at: 1s, laravel: {errorRate: 1, errorStatus: 200}}]`, "is not an error status"},
		{"undecodable and unaccounted 2xx", `[{at: 1s, duration: 2s, laravel: {badBodyRate: 0.5, unaccountedRate: 1}}]`, ""},
		{"a rate above 1", `[{at: 1s, laravel: {badBodyRate: 1.5}}]`, "badBodyRate: 1.5 is not a probability"},
		{"item refusals of chosen sessions", `[{at: 1s, duration: 5s, laravel: {refuseSessions: [users-i0-1, users-i0-7]}}]`, ""},
		{"an empty session id", `[{at: 1s, laravel: {refuseSessions: [""]}}]`, "a session id can't be empty"},
		{"every process action", `[{at: 1s, process: {action: gateway-pause}}, {at: 2s, process: {action: redis-pause}}, {at: 3s, process: {action: redis-evict}}, {at: 4s, process: {action: gateway-kill}}]`, ""},
		{"Redis restarted losing its last writes while the gateway is down", `[{at: 1s, duration: 3s, process: {action: redis-restart-while-gateway-down}}]`, ""},
		{"Redis restarted while every replica is down", "[{at: 1s, process: {action: redis-restart-while-gateway-down}}]\ngateway: {replicas: 2}", "needs one gateway"},
		{"WhatsApp unreachable for half of the devices", `[{at: 1s, duration: 5s, whatsapp: {action: down, share: 0.5}}]`, ""},
		{"WhatsApp silent for a third of the devices", `[{at: 1s, duration: 5s, whatsapp: {action: silent, share: 0.3}}]`, ""},
		{"WhatsApp closing new connections mid-handshake, a third of the sessions dropped into it", `[{at: 1s, duration: 4s, whatsapp: {action: handshake-cut, share: 0.3}}]`, ""},
		{"an unknown WhatsApp action", `[{at: 1s, whatsapp: {action: vanish}}]`, `"vanish" is not an action; use drop, replace, logout, restart, down, silent or handshake-cut`},
		{"an unknown process action", `[{at: 1s, process: {action: gateway-freeze}}]`, `"gateway-freeze" is not a process action; use one of gateway-kill, gateway-term, gateway-pause`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse("f.yaml", []byte(head+"faults: "+tc.faults+"\n"), nil)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("accepted %+v", f.Faults)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("got %v, want it to say %q", err, tc.want)
			}
		})
	}
}

// The timed faults exist only in the schedule: laravel.faults is set once at start by
// fakelaravel's flags.
func TestTimedLaravelFaultsAreRefusedAsInitialFaults(t *testing.T) {
	_, err := Parse("f.yaml", []byte("scenarios:\n  s: {executor: constant-vus, vus: 1, duration: 1m}\nlaravel:\n  faults: {refuseSessions: [a]}\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "put them in the fault schedule") {
		t.Fatalf("got %v", err)
	}
}

// A fault renders back to the YAML it came from (the chaos campaign writes its schedules as
// scenario files): zero fields are left out.
func TestFaultsMarshalWithoutZeroFields(t *testing.T) {
	f, err := Parse("f.yaml", []byte("scenarios:\n  s: {executor: constant-vus, vus: 1, duration: 1m}\nfaults: [{name: x, at: 1s, duration: 2s, laravel: {errorRate: 1, errorStatus: 429, retryAfter: 1h}}]\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := yaml.Marshal(f.Faults)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{"errorStatus: 429", "retryAfter: 1h0m0s", "at: 1s"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q lacks %q", got, want)
		}
	}
	for _, zero := range []string{"down", "badBodyRate", "whatsapp", "process", "redirectTo"} {
		if strings.Contains(got, zero) {
			t.Errorf("%q has the zero field %s", got, zero)
		}
	}
}
