//go:build race

package whatsapp_test

// raceEnabled scales load tests down under the race detector (5-10x slower).
const raceEnabled = true
