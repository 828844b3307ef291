package sendonce

import (
	"context"
	"strings"
	"testing"
	"time"

	"wagate/internal/redistest"
)

// Every store answers a key's lifecycle the same way: claimed once, in flight while it sends,
// the first answer for the same body afterwards, a mismatch for another body, free again after
// an abandoned send; keys of different sessions are distinct.
func TestStoresAnswerAKeysLifecycle(t *testing.T) {
	t.Run("memory", func(t *testing.T) { lifecycle(t, NewMemory(time.Hour)) })
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) { lifecycle(t, NewRedis(b.Client(t), time.Hour)) })
}

func lifecycle(t *testing.T, s Store) {
	t.Helper()
	ctx := context.Background()
	steps := []struct {
		name      string
		do        func() (Outcome, error)
		want      State
		wantReply string
	}{
		{"a new key is claimed", func() (Outcome, error) { return s.Begin(ctx, "s1", "k1", "fpA") }, Claimed, ""},
		{"the same key and body while sending is in flight", func() (Outcome, error) { return s.Begin(ctx, "s1", "k1", "fpA") }, InFlight, ""},
		{"the same key with another body while sending is a mismatch", func() (Outcome, error) { return s.Begin(ctx, "s1", "k1", "fpB") }, Mismatch, ""},
		{"the same key in another session is its own", func() (Outcome, error) { return s.Begin(ctx, "s2", "k1", "fpB") }, Claimed, ""},
		{"after the answer the same body gets it", func() (Outcome, error) {
			if err := s.Finish(ctx, "s1", "k1", "fpA", []byte(`{"message_id":"X"}`)); err != nil {
				return Outcome{}, err
			}
			return s.Begin(ctx, "s1", "k1", "fpA")
		}, Done, `{"message_id":"X"}`},
		{"after the answer another body is a mismatch", func() (Outcome, error) { return s.Begin(ctx, "s1", "k1", "fpB") }, Mismatch, ""},
		{"an abandoned send frees the key", func() (Outcome, error) {
			if err := s.Abandon(ctx, "s2", "k1"); err != nil {
				return Outcome{}, err
			}
			return s.Begin(ctx, "s2", "k1", "fpC")
		}, Claimed, ""},
	}
	for _, st := range steps {
		got, err := st.do()
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got.State != st.want || string(got.Answer) != st.wantReply {
			t.Fatalf("%s: got state %d answer %q, want %d %q", st.name, got.State, got.Answer, st.want, st.wantReply)
		}
	}
}

// An in-flight claim expires after InFlightTTL (a gateway died mid-send) and an answer after the
// store's TTL; then the key is new again.
func TestMemoryRecordsExpire(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1000, 0)
	s := NewMemory(time.Hour)
	s.now = func() time.Time { return now }
	if o, _ := s.Begin(ctx, "s", "k", "fp"); o.State != Claimed {
		t.Fatal("not claimed")
	}
	now = now.Add(InFlightTTL + time.Second)
	if o, _ := s.Begin(ctx, "s", "k", "fp"); o.State != Claimed {
		t.Fatalf("an expired in-flight claim gave %d, want it claimed again", o.State)
	}
	_ = s.Finish(ctx, "s", "k", "fp", []byte(`1`))
	now = now.Add(59 * time.Minute)
	if o, _ := s.Begin(ctx, "s", "k", "fp"); o.State != Done {
		t.Fatalf("an answer within its TTL gave %d", o.State)
	}
	now = now.Add(2 * time.Minute)
	if o, _ := s.Begin(ctx, "s", "k", "fp"); o.State != Claimed {
		t.Fatalf("an expired answer gave %d, want the key claimed again", o.State)
	}
}

// Memory holds at most MaxMemoryKeys records, dropping the oldest first.
func TestMemoryIsBounded(t *testing.T) {
	ctx := context.Background()
	s := NewMemory(time.Hour)
	for i := range MaxMemoryKeys + 10 {
		_, _ = s.Begin(ctx, "s", strings.Repeat("k", 1+i%200)+string(rune('a'+i%26))+time.Duration(i).String(), "fp")
	}
	if n := len(s.records); n > MaxMemoryKeys {
		t.Fatalf("%d records held, bound %d", n, MaxMemoryKeys)
	}
}

func TestValidKey(t *testing.T) {
	for _, c := range []struct {
		key  string
		want bool
	}{
		{"", false},
		{"a", true},
		{"order-42:send/1", true},
		{strings.Repeat("x", MaxKeyLen), true},
		{strings.Repeat("x", MaxKeyLen+1), false},
		{"with space", false},
		{"tab\t", false},
		{"ñ", false},
	} {
		if got := ValidKey(c.key); got != c.want {
			t.Errorf("ValidKey(%q) = %v, want %v", c.key, got, c.want)
		}
	}
}

// A keyed send's message id is whatsmeow's shape and the same for the same session and key only.
func TestMessageIDIsStablePerSessionAndKey(t *testing.T) {
	a := MessageID("s1", "k")
	if len(a) != 40 || !strings.HasPrefix(a, "3EB0") || strings.ToUpper(a) != a {
		t.Fatalf("MessageID = %q, want 3EB0 and 36 upper-case hex digits", a)
	}
	if MessageID("s1", "k") != a || MessageID("s2", "k") == a || MessageID("s1", "k2") == a {
		t.Fatal("MessageID must be the same for the same session and key, and only for them")
	}
	if Fingerprint("a", "bc") == Fingerprint("ab", "c") {
		t.Fatal("Fingerprint must keep field boundaries")
	}
}
