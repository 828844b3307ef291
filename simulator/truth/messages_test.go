package truth

import (
	"testing"
	"time"
)

func TestJudgeMessages(t *testing.T) {
	t0 := time.Unix(1000, 0)
	w := func(id, chat string, s int) Written {
		return Written{SessionID: "s", Chat: chat, MessageID: id, At: t0.Add(time.Duration(s) * time.Second)}
	}
	st := func(id, chat string, seq int64, deliveries int, s int) Stored {
		return Stored{SessionID: "s", MessageID: id, Chat: chat, Sequence: seq, Deliveries: deliveries, StoredAt: t0.Add(time.Duration(s) * time.Second)}
	}
	written := []Written{w("a", "c1", 0), w("b", "c1", 1), w("x", "c2", 1), w("c", "c1", 2)}
	all := func(string) bool { return true }
	for _, c := range []struct {
		name                       string
		stored                     []Stored
		lost, dup, outOfOrder, got int
	}{
		{"all stored once in order", []Stored{st("a", "c1", 1, 1, 1), st("b", "c1", 2, 1, 2), st("x", "c2", 3, 1, 2), st("c", "c1", 4, 1, 3)}, 0, 0, 0, 4},
		{"order between chats does not matter", []Stored{st("x", "c2", 1, 1, 2), st("a", "c1", 2, 1, 1), st("b", "c1", 3, 1, 2), st("c", "c1", 4, 1, 3)}, 0, 0, 0, 4},
		{"one never stored", []Stored{st("a", "c1", 1, 1, 1), st("x", "c2", 3, 1, 2), st("c", "c1", 4, 1, 3)}, 1, 0, 0, 3},
		{"one delivered twice", []Stored{st("a", "c1", 1, 1, 1), st("b", "c1", 2, 2, 2), st("x", "c2", 3, 1, 2), st("c", "c1", 4, 1, 3)}, 0, 1, 0, 4},
		{"a later message numbered before an earlier one of its chat", []Stored{st("a", "c1", 1, 1, 1), st("b", "c1", 5, 1, 2), st("x", "c2", 3, 1, 2), st("c", "c1", 4, 1, 3)}, 0, 0, 1, 4},
		{"nothing stored", nil, 4, 0, 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := JudgeMessages(written, c.stored, all)
			if v.Written != 4 || v.Lost != c.lost || v.Duplicated != c.dup || v.OutOfOrder != c.outOfOrder || len(v.Delays) != c.got {
				t.Fatalf("got written %d lost %d dup %d out of order %d delays %d, want 4 %d %d %d %d (%v)",
					v.Written, v.Lost, v.Duplicated, v.OutOfOrder, len(v.Delays), c.lost, c.dup, c.outOfOrder, c.got, v.Problems)
			}
		})
	}
	// A message the gateway never acknowledged (a device logged out while fakewa held it) is not
	// lost when Laravel lacks it; one it acknowledged is.
	if v := JudgeMessages(written, nil, func(id string) bool { return id == "b" }); v.Lost != 1 || v.Unacknowledged != 3 {
		t.Fatalf("lost %d unacknowledged %d, want 1 (b, acknowledged) and 3", v.Lost, v.Unacknowledged)
	}
	if v := JudgeMessages(written[:1], []Stored{st("a", "c1", 1, 1, 3)}, all); v.Delays[0] != 3*time.Second {
		t.Fatalf("delay %v, want written -> stored = 3s", v.Delays[0])
	}
}

func TestTheEndOfARunWaitsOnlyForTheMessagesTheGatewayAcknowledged(t *testing.T) {
	m := NewMessages()
	for _, id := range []string{"a", "b", "held"} {
		m.Wrote(Written{SessionID: "s", Chat: "c1", MessageID: id})
	}
	m.Acked("a")
	m.Acked("b")
	stored := func(ids ...string) []Stored {
		var out []Stored
		for _, id := range ids {
			out = append(out, Stored{SessionID: "s", MessageID: id, Chat: "c1"})
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		stored []Stored
		want   bool
	}{
		{"nothing stored yet", nil, false},
		{"one acknowledged message missing", stored("a"), false},
		{"every acknowledged message stored, the one never acknowledged not", stored("a", "b"), true},
		{"everything stored", stored("a", "b", "held"), true},
		{"the same message id of another session does not count", []Stored{{SessionID: "other", MessageID: "b"}, {SessionID: "s", MessageID: "a"}}, false},
	} {
		if got := m.HeldBy(tc.stored); got != tc.want {
			t.Errorf("%s: HeldBy = %v, want %v", tc.name, got, tc.want)
		}
	}
}
