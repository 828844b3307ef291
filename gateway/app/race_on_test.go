//go:build race

package app_test

// raceEnabled: the tests run under the race detector (see whatsmeowRacesOnAPeerClose).
const raceEnabled = true
