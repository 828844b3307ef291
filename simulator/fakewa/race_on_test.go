//go:build race

package fakewa

// raceEnabled: the tests run under the race detector.
const raceEnabled = true
