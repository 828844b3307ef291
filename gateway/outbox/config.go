package outbox

import (
	"errors"
	"fmt"

	"wagate/gateway/internal/configcheck"
)

// MaxGatewayID is the longest GatewayID: it starts every consumer name of the group.
const MaxGatewayID = 128

// DefaultConfig returns the outbox's defaults, the values zero fields take (the Default*
// constants). The fields derived at New are left unset: GatewayID (the host name), Consumer (one
// per process incarnation) and MarkerKey (Stream + ":generation"), as are OnDataLost, Redriving
// and Logger.
func DefaultConfig() Config {
	return Config{
		Stream:            DefaultStream,
		Group:             DefaultGroup,
		ConsumerGoneAfter: DefaultConsumerGoneAfter,
		ConsumerSweep:     DefaultConsumerSweep,
		MarkerCheck:       DefaultMarkerCheck,
		PolicyCheck:       DefaultPolicyCheck,
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
	errs := []error{
		configcheck.NotNegative("outbox", "ConsumerGoneAfter", c.ConsumerGoneAfter),
		configcheck.NotNegative("outbox", "ConsumerSweep", c.ConsumerSweep),
		configcheck.NotNegative("outbox", "MarkerCheck", c.MarkerCheck),
		configcheck.NotNegative("outbox", "PolicyCheck", c.PolicyCheck),
		configcheck.NotNegative("outbox", "RoomPoll", c.RoomPoll),
		configcheck.NotNegative("outbox", "Max", c.Max),
		configcheck.NotNegative("outbox", "AppendTimeout", c.AppendTimeout),
		configcheck.NotNegative("outbox", "DeadLetterMax", c.DeadLetterMax),
	}
	if len(c.GatewayID) > MaxGatewayID {
		errs = append(errs, &configcheck.Error{Component: "outbox", Setting: "GatewayID",
			Value: fmt.Sprintf("%d characters", len(c.GatewayID)), Max: fmt.Sprintf("%d characters", MaxGatewayID)})
	}
	return errors.Join(errs...)
}
