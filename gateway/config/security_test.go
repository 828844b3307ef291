package config

import (
	"strings"
	"testing"
)

// The test-only WhatsApp settings (dial a fake server, trust its root key) cannot be turned on by
// accident: the dial settings alone are refused, a switch spelled off does not enable them, the
// switch alone is refused, and only the explicit switch with both settings is accepted.
func TestTestOnlyWhatsAppSettingsNeedTheExplicitSwitch(t *testing.T) {
	withDial := func(extra env) env {
		e := minimal()
		e["WAGATE_WA_DIAL"] = "127.0.0.1:5555"
		e["WAGATE_WA_ROOT_PUBKEY"] = rootHex
		for k, v := range extra {
			e[k] = v
		}
		return e
	}
	refused := map[string]env{
		"dial settings without the switch":        withDial(nil),
		"only the dial address":                   {"WAGATE_API_TOKEN": "0123456789abcdef", "WAGATE_LARAVEL_URL": "http://x", "WAGATE_WA_DIAL": "127.0.0.1:5555"},
		"only the root key":                       {"WAGATE_API_TOKEN": "0123456789abcdef", "WAGATE_LARAVEL_URL": "http://x", "WAGATE_WA_ROOT_PUBKEY": rootHex},
		"switch spelled 0":                        withDial(env{"WAGATE_WA_INSECURE_TEST": "0"}),
		"switch spelled false":                    withDial(env{"WAGATE_WA_INSECURE_TEST": "false"}),
		"switch empty":                            withDial(env{"WAGATE_WA_INSECURE_TEST": ""}),
		"switch with a typo'd value":              withDial(env{"WAGATE_WA_INSECURE_TEST": "yes please"}),
		"switch without the dial settings":        {"WAGATE_API_TOKEN": "0123456789abcdef", "WAGATE_LARAVEL_URL": "http://x", "WAGATE_WA_INSECURE_TEST": "1"},
		"switch with a root key that is not 32 B": withDial(env{"WAGATE_WA_INSECURE_TEST": "1", "WAGATE_WA_ROOT_PUBKEY": "abcd"}),
	}
	for name, e := range refused {
		t.Run(name, func(t *testing.T) {
			l, _, err := load(t, e, nil)
			if err == nil {
				d, _ := l.Config.WhatsAppDial()
				t.Fatalf("accepted; dial settings in effect: %+v", d)
			}
			if !strings.Contains(err.Error(), "WAGATE_WA_") {
				t.Errorf("error does not name the setting: %v", err)
			}
		})
	}
	l, _, err := load(t, withDial(env{"WAGATE_WA_INSECURE_TEST": "1"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := l.Config.WhatsAppDial(); err != nil || d == nil {
		t.Fatalf("explicit switch: %+v %v", d, err)
	}
	// Without any of them the gateway talks to WhatsApp.
	l, _, err = load(t, minimal(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := l.Config.WhatsAppDial(); d != nil {
		t.Fatalf("dial settings in effect by default: %+v", d)
	}
}

// The gateway refuses to start without an API token of at least 16 characters, in both modes:
// there is no unauthenticated mode, not even for development.
func TestNoAPITokenNoGateway(t *testing.T) {
	for _, mode := range []string{ModeLegacy, ModeBatch} {
		for _, tok := range []string{"", "short", strings.Repeat("x", 15)} {
			e := minimal()
			e["WAGATE_MODE"] = mode
			e["WAGATE_API_TOKEN"] = tok
			if _, _, err := load(t, e, nil); err == nil || !strings.Contains(err.Error(), "WAGATE_API_TOKEN") {
				t.Errorf("mode %s, token %q: %v", mode, tok, err)
			}
		}
	}
	e := minimal()
	delete(e, "WAGATE_API_TOKEN")
	e["WAGATE_API_TOKEN_FILE"] = "/run/secrets/missing"
	if _, _, err := load(t, e, nil); err == nil {
		t.Error("a missing token file was accepted")
	}
}
