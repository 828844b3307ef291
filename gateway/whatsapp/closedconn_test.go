package whatsapp

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"wagate/gateway/session"
	"wagate/gateway/storage"
	"wagate/simulator/fakewa"
)

// warnings records the WARN lines a driver logs (whatsmeow's among them) and passes them on.
type warnings struct {
	mu    sync.Mutex
	lines []string
	next  slog.Handler
}

func (w *warnings) Enabled(ctx context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w *warnings) WithAttrs([]slog.Attr) slog.Handler             { return w }
func (w *warnings) WithGroup(string) slog.Handler                  { return w }

func (w *warnings) Handle(ctx context.Context, r slog.Record) error {
	w.mu.Lock()
	w.lines = append(w.lines, r.Message)
	w.mu.Unlock()
	return w.next.Handle(ctx, r)
}

// has reports whether a line holds every one of parts.
func (w *warnings) has(parts ...string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, l := range w.lines {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			return true
		}
	}
	return false
}

// A session handed over to another replica (cluster mode): the old holder's connection is
// closed and released while its handler is busy with one message (A) and another (B) waits in
// whatsmeow's queue; the new holder's client, in another process whose decryption gate the old
// one does not share, gets both again from WhatsApp. whatsmeow's loop on the closed connection
// may still take B (it picks the next node or the closed socket at random): it decrypted B while
// the new holder did, and the new holder's copy could fail with "old counter" and be
// acknowledged while the old one's was refused: lost. A connection the session closed decrypts
// nothing more. Two drivers on one database stand for the two replicas (their store is shared,
// their gates are not); the database's write lock orders the two decryptions as in
// TestAMessageThePairingClientStillHoldsIsDeliveredOnceByTheNextClient. Rounds repeat, each on a
// new device, until the old loop went on to B in one (at most 12: 1 in 4096 never does).
func TestAConnectionTheSessionClosedDecryptsNothingMoreSoAnotherReplicasRedeliveryIsNotLost(t *testing.T) {
	logs := &warnings{next: slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})}
	log := slog.New(logs)
	wa, db, first := driverOnFakewa(t, log, fakewa.Config{})
	replicas := [2]*Driver{first, newDriver(t, db, log, wa)}

	for round := range 12 {
		if tookB := handOverWithAMessageQueued(t, wa, db, replicas, logs, round); tookB {
			return
		}
	}
	t.Fatal("in 12 rounds whatsmeow's loop on the closed connection never went on to the queued message")
}

// handOverWithAMessageQueued plays one round and reports whether the old holder's loop went on
// to B (decrypting it, or refusing to).
func handOverWithAMessageQueued(t *testing.T, wa *fakewa.Server, db *storage.DB, replicas [2]*Driver, logs *warnings, round int) bool {
	ctx := context.Background()
	got := &handoffs{taken: map[string]int{}}
	sid := fmt.Sprintf("s%d", round)

	// The old holder: takes the first message, holds A then refuses it (released meanwhile),
	// refuses everything after.
	oldHolder := newFirstClient(got)
	old := connect(t, replicas[0], sid, "", oldHolder.handle)
	jid := pairDevice(t, wa, old, &oldHolder.link, fmt.Sprintf("55119444400%02d", round))
	waitReceipt(t, wa, customerWrites(t, wa, jid, "first")) // pkmsg -> msg
	idA := customerWrites(t, wa, jid, "A")
	waitClosed(t, oldHolder.hasA, "A reaching the old holder's handler")
	idB := customerWrites(t, wa, jid, "B")
	waitDelivered(t, wa, idB, "the old holder")
	time.Sleep(200 * time.Millisecond) // read off the socket, queued behind A

	// The handover: the old holder closes and releases the connection, the new holder connects.
	old.Disconnect()
	old.Release()
	// The new holder: holds A and refuses it, takes B.
	newHolder := newNextClient(got)
	next := connect(t, replicas[1], sid, jid.String(), newHolder.handle)
	waitClosed(t, newHolder.hasA, "WhatsApp's redelivery of A reaching the new holder's handler")

	lock, err := db.SQL.BeginTx(ctx, nil) // BEGIN IMMEDIATE: decryptions wait to begin
	if err != nil {
		t.Fatal(err)
	}
	close(newHolder.release)           // the new holder refuses A, looks B up, waits for the lock
	time.Sleep(500 * time.Millisecond) // its busy handler now retries every 100 ms
	close(oldHolder.release)           // the old loop goes on to B, or ends
	time.Sleep(20 * time.Millisecond)
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}

	waitReceipt(t, wa, idB)
	if n := got.count("B"); n != 1 {
		t.Fatalf("round %d: B was acknowledged to WhatsApp and taken %d times, want once (acknowledged without being taken: lost)", round, n)
	}
	// The new holder refused A too: its next connection takes it.
	waitPostLogin(t, &newHolder.link, "the new holder")
	next.Disconnect()
	var lastLink linkEvents
	takes := takesEverything(got)
	last := connect(t, replicas[1], sid, jid.String(), func(ev session.DriverEvent) error {
		if _, ok := ev.(session.MessageReceived); ok {
			return takes(ev)
		}
		return lastLink.record(ev)
	})
	waitReceipt(t, wa, idA)
	for _, text := range []string{"first", "A", "B"} {
		if n := got.count(text); n != 1 {
			t.Errorf("round %d: %s taken %d times, want once", round, text, n)
		}
	}
	waitPostLogin(t, &lastLink, "the last connection")
	last.Disconnect()
	return oldHolder.sawB.Load() || logs.has(idB, errDecryptOff.Error())
}
