package configcheck

import (
	"errors"
	"testing"
	"time"
)

func TestARefusedSettingIsNamedByItsComponentOrByItsRule(t *testing.T) {
	cases := []struct {
		name      string
		err       error
		wantError string // the component's message
		wantRule  string // the rule, for a caller that names the setting itself
	}{
		{"negative duration", NotNegative("cache", "QRTTL", -time.Second), "cache config: QRTTL is negative (-1s)", "must not be negative (-1s)"},
		{"negative rate", NotNegative("api", "RateLimit.PerSecond", -0.5), "api config: RateLimit.PerSecond is negative (-0.5)", "must not be negative (-0.5)"},
		{"above the bound", AtMost("session", "QRCodes", 101, 100), "session config: QRCodes 101 is above 100", "must be at most 100 (101)"},
		{"a bound in words", &Error{Component: "outbox", Setting: "GatewayID", Value: "129 characters", Max: "128 characters"},
			"outbox config: GatewayID 129 characters is above 128 characters", "must be at most 128 characters (129 characters)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var e *Error
			if !errors.As(tc.err, &e) {
				t.Fatalf("%v is no *Error", tc.err)
			}
			if e.Error() != tc.wantError || e.Rule() != tc.wantRule {
				t.Errorf("Error() = %q, Rule() = %q; want %q, %q", e.Error(), e.Rule(), tc.wantError, tc.wantRule)
			}
		})
	}
}

func TestWithinTheBoundsIsNoError(t *testing.T) {
	if err := NotNegative("api", "RateLimit.PerSecond", 0.0); err != nil {
		t.Errorf("NotNegative(0) = %v, want nil: zero takes the default", err)
	}
	if err := AtMost("session", "QRCodes", 100, 100); err != nil {
		t.Errorf("AtMost(100, 100) = %v, want nil", err)
	}
}

func TestErrorsSplitsAValidateResult(t *testing.T) {
	other := errors.New("wiring missing")
	settings, rest := Errors(errors.Join(NotNegative("cache", "QRTTL", -1), nil, errors.Join(AtMost("session", "QRCodes", 7, 6)), other))
	if len(settings) != 2 || settings[0].Setting != "QRTTL" || settings[1].Setting != "QRCodes" || len(rest) != 1 || rest[0] != other {
		t.Errorf("Errors = %v, %v", settings, rest)
	}
	if settings, rest := Errors(nil); settings != nil || rest != nil {
		t.Errorf("Errors(nil) = %v, %v", settings, rest)
	}
}
