// Package configcheck holds the checks every component's Config.Validate shares: zero settings
// take the component's defaults, negative ones cannot work, and some have an upper bound. Their
// errors are *Error values, so a caller that fills a component's settings from its own (the
// gateway's configuration) can name the setting its user wrote instead of the component's field.
package configcheck

import (
	"errors"
	"fmt"
)

// Error is one setting of a component that cannot work.
type Error struct {
	// Component names the package whose Config holds the setting, e.g. "session".
	Component string
	// Setting is the field, e.g. "QRCodes" or "RateLimit.Burst".
	Setting string
	// Value is the refused value as shown, e.g. -1s or "129 characters".
	Value any
	// Max is the bound the value is above, e.g. "100"; empty when the value is negative.
	Max string
}

// Error names the component and its field: "session config: QRCodes 101 is above 100",
// "cache config: QRTTL is negative (-1s)".
func (e *Error) Error() string {
	if e.Max == "" {
		return fmt.Sprintf("%s config: %s is negative (%v)", e.Component, e.Setting, e.Value)
	}
	return fmt.Sprintf("%s config: %s %v is above %s", e.Component, e.Setting, e.Value, e.Max)
}

// Rule says what the setting must be and what it was, for a message that names the setting
// itself: "must not be negative (-1s)", "must be at most 100 (101)".
func (e *Error) Rule() string {
	if e.Max == "" {
		return fmt.Sprintf("must not be negative (%v)", e.Value)
	}
	return fmt.Sprintf("must be at most %s (%v)", e.Max, e.Value)
}

// NotNegative returns an error naming the component's setting when v is below zero, nil
// otherwise (errors.Join drops it).
func NotNegative[T ~int | ~int64 | ~float64](component, setting string, v T) error {
	if v < 0 {
		return &Error{Component: component, Setting: setting, Value: v}
	}
	return nil
}

// AtMost returns an error naming the component's setting when v is above limit, nil otherwise.
func AtMost[T ~int | ~int64 | ~float64](component, setting string, v, limit T) error {
	if v > limit {
		return &Error{Component: component, Setting: setting, Value: v, Max: fmt.Sprint(limit)}
	}
	return nil
}

// Errors lists the *Error values in err, a Validate result (an errors.Join of them or nil), and
// whatever else it holds as rest.
func Errors(err error) (settings []*Error, rest []error) {
	if err == nil {
		return nil, nil
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			s, r := Errors(e)
			settings, rest = append(settings, s...), append(rest, r...)
		}
		return settings, rest
	}
	var e *Error
	if errors.As(err, &e) {
		return []*Error{e}, nil
	}
	return nil, []error{err}
}
