package outbox

import (
	"errors"
	"fmt"
)

// MaxGatewayID is the longest GatewayID: it starts every consumer name of the group.
const MaxGatewayID = 128

// DefaultConfig returns the outbox's defaults, the values zero fields take (the Default*
// constants). The fields derived at New are left unset: GatewayID (the host name), Consumer (one
// per process incarnation) and MarkerKey (Stream + ":generation"), as are OnDataLost and Logger.
func DefaultConfig() Config {
	return Config{
		Stream:            DefaultStream,
		Group:             DefaultGroup,
		ConsumerGoneAfter: DefaultConsumerGoneAfter,
		ConsumerSweep:     DefaultConsumerSweep,
		MarkerCheck:       DefaultMarkerCheck,
		RoomPoll:          DefaultRoomPoll,
		DeadLetterStream:  DefaultDeadLetterStream,
		Max:               DefaultMax,
		AppendTimeout:     DefaultAppendTimeout,
		DeadLetterMax:     DefaultDeadLetterMax,
	}
}

// Validate reports settings that cannot work: negative bounds or durations, a GatewayID longer
// than MaxGatewayID. Zero fields are fine (they take the defaults).
func (c Config) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"ConsumerGoneAfter", int64(c.ConsumerGoneAfter)}, {"ConsumerSweep", int64(c.ConsumerSweep)},
		{"MarkerCheck", int64(c.MarkerCheck)}, {"RoomPoll", int64(c.RoomPoll)}, {"Max", c.Max},
		{"AppendTimeout", int64(c.AppendTimeout)}, {"DeadLetterMax", c.DeadLetterMax},
	} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("outbox config: %s is negative (%d)", f.name, f.v))
		}
	}
	if len(c.GatewayID) > MaxGatewayID {
		errs = append(errs, fmt.Errorf("outbox config: GatewayID is %d characters, above %d", len(c.GatewayID), MaxGatewayID))
	}
	return errors.Join(errs...)
}
