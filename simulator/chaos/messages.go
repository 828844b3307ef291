package chaos

import (
	"fmt"
	"slices"
	"strings"

	"wagate/simulator/truth"
)

// InvMessages is the invariant on customers' messages: none lost, duplicated or out of order in
// its chat, except in sessions whose items the schedule made Laravel refuse (dead-lettered by
// design).
const InvMessages = "messages"

// MessageObservation is the messages' part of an observation: what the phones wrote and how many
// of those Laravel lost, received twice or numbered out of order, in which sessions.
type MessageObservation struct {
	Written, Lost, Duplicated, OutOfOrder int64
	Sessions, Problems                    []string
}

// messageObservation reads the messages' ground truth of a run's outcome (nil: none written).
func messageObservation(t *truth.MessagesTruth) MessageObservation {
	if t == nil {
		return MessageObservation{}
	}
	return MessageObservation{Written: t.Written, Lost: t.Lost, Duplicated: t.Duplicated, OutOfOrder: t.OutOfOrder,
		Sessions: t.Sessions, Problems: t.Problems}
}

// checkMessages is the messages invariant: a violation when a session Laravel never refused item
// by item has a message lost, duplicated or out of order.
func checkMessages(o Observation) []Violation {
	m := o.Messages
	if m.Lost+m.Duplicated+m.OutOfOrder == 0 {
		return nil
	}
	var blamed []string
	for _, s := range m.Sessions {
		if !slices.Contains(o.RefusedSessions, s) {
			blamed = append(blamed, s)
		}
	}
	if len(blamed) == 0 {
		return nil
	}
	detail := fmt.Sprintf("of %d messages written, %d lost, %d duplicated, %d out of order, in sessions Laravel never refused: %s",
		m.Written, m.Lost, m.Duplicated, m.OutOfOrder, strings.Join(blamed, ", "))
	if len(m.Problems) > 0 {
		detail += "; e.g. " + strings.Join(m.Problems, "; ")
	}
	return []Violation{{Invariant: InvMessages, Detail: detail}}
}
