// Package configcheck holds the check every component's Config.Validate shares: zero settings
// take the component's defaults, negative ones cannot work.
package configcheck

import "fmt"

// NotNegative returns an error naming the component's setting when v is below zero, nil
// otherwise (errors.Join drops it).
func NotNegative[T ~int | ~int64 | ~float64](component, setting string, v T) error {
	if v < 0 {
		return fmt.Errorf("%s config: %s is negative (%v)", component, setting, v)
	}
	return nil
}
