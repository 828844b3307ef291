package user

import (
	"context"
	"errors"
	"net/url"
)

// ScanUnanswered reports whether a phone's scan (Phone.Pair) failed without an answer, leaving
// its outcome unknown: the call's context ended, or the control request to a fakewa process
// timed out or lost its connection after reaching it. The pairing may then still complete (fakewa
// completes a pairing the client signs, whoever waits for it), so the connected state it causes
// is unacknowledged, not undone. An answer (fakewa refusing the code, a pairing the client
// rejected or whose connection closed) or a request that never reached fakewa (connection
// refused) changed nothing.
func ScanUnanswered(err error) bool {
	if err == nil || Unreached(err) {
		return false
	}
	var transport *url.Error
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &transport)
}
