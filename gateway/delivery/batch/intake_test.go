package batch

import (
	"testing"

	"wagate/gateway/event"
)

// What becomes of an entry the flusher takes in (a read, its own pending entries at a start, a
// claim, an adoption) is decided by what the message journal knows of its item: an item Laravel
// applied is never sent again, an item sent in a batch goes out again only under that batch's
// key, and everything else is batched as before.
func TestAnEntryTakenInIsDroppedSentInItsNotedBatchOrBatchedByWhatTheJournalKnows(t *testing.T) {
	cases := []struct {
		name                     string
		kind                     event.Kind
		st                       JournalState
		keyInFlight, keyRecorded bool
		want                     intakeAction
	}{
		{"a status is not journalled", event.KindStatus, JournalState{}, false, false, intakeBatch},
		{"a QR code is not journalled", event.KindQR, JournalState{Applied: true}, false, false, intakeBatch},
		{"a message the journal holds no row of (pruned, or taken before the journal)", event.KindMessage, JournalState{}, false, false, intakeBatch},
		{"a message never about to be sent", event.KindMessage, JournalState{}, true, true, intakeBatch},
		{"a message Laravel applied (settled in the second Redis lost)", event.KindMessage, JournalState{Applied: true, Batch: "k1"}, false, false, intakeDrop},
		{"a receipt Laravel applied", event.KindReceipt, JournalState{Applied: true}, false, false, intakeDrop},
		{"a message Laravel applied whose batch is recorded", event.KindMessage, JournalState{Applied: true, Batch: "k1"}, false, true, intakeDrop},
		{"a message a batch in flight here carries in another entry", event.KindMessage, JournalState{Batch: "k1", SentAs: "e1"}, true, false, intakeDrop},
		{"a message of a batch Redis still records: resume re-forms it", event.KindMessage, JournalState{Batch: "k1", SentAs: "e1"}, false, true, intakeBatch},
		{"a message of a batch nothing here sends and Redis lost the record of", event.KindMessage, JournalState{Batch: "k1", SentAs: "e1"}, false, false, intakeNotedBatch},
		{"a receipt of a batch nothing here sends and Redis lost the record of", event.KindReceipt, JournalState{Batch: "k2"}, false, false, intakeNotedBatch},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := intakeDecision(c.kind, c.st, c.keyInFlight, c.keyRecorded); got != c.want {
				t.Fatalf("intakeDecision(%s, %+v, in flight %v, recorded %v) = %s, want %s", c.kind, c.st, c.keyInFlight, c.keyRecorded, got, c.want)
			}
		})
	}
}
