package session

import (
	"fmt"
	"runtime"
	"testing"
)

// The set drops exactly the keys seen among the last recentIDsKept added, and forgets a key on
// request (its event was refused: WhatsApp's redelivery must be taken).
func TestRecentKeysRemembersTheLastKeysAddedAndForgetsOnRequest(t *testing.T) {
	var r recentKeys
	key := func(i int) string { return fmt.Sprintf("r\x00read\x005511900000001@s.whatsapp.net\x003EB0%016X", i) }
	for i := range recentIDsKept {
		if !r.add(key(i)) {
			t.Fatalf("key %d taken for a duplicate on its first add", i)
		}
	}
	for i := range recentIDsKept {
		if r.add(key(i)) {
			t.Fatalf("key %d, among the last %d added, not recognised as a duplicate", i, recentIDsKept)
		}
	}
	if !r.add(key(recentIDsKept)) {
		t.Fatal("a new key taken for a duplicate")
	}
	if !r.add(key(0)) {
		t.Fatal("the oldest key, pushed out by a newer one, still recognised")
	}
	r.forget(key(5))
	if !r.add(key(5)) {
		t.Fatal("a forgotten key still recognised")
	}
	if r.add(key(6)) {
		t.Fatal("forgetting one key forgot another")
	}
}

// BenchmarkRecentKeys reports what a session's duplicate filter holds with a few keys (a
// session's first messages and receipts) and once full (the last recentIDsKept message and
// receipt keys: a session with traffic reaches it within hours): bytes live after a GC per
// session, keys built as messageEvents and receiptEvents build them.
func BenchmarkRecentKeys(b *testing.B) {
	for _, n := range []int{16, recentIDsKept} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) { benchmarkRecentKeys(b, n) })
	}
}

func benchmarkRecentKeys(b *testing.B, n int) {
	const sessions = 200
	keys := func(s int) []string {
		out := make([]string, n)
		for i := range out {
			if i%2 == 0 {
				out[i] = "m\x00" + fmt.Sprintf("3EB0%016X%04d", i, s)
			} else {
				out[i] = "r\x00" + "read" + "\x00" + "5511900000001@s.whatsapp.net" + "\x00" + fmt.Sprintf("3EB0%016X%04d", i, s)
			}
		}
		return out
	}
	var perSession float64
	for b.Loop() {
		b.StopTimer()
		sets := make([]recentKeys, sessions)
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		all := make([][]string, sessions) // garbage once added, but for what the sets keep
		for s := range all {
			all[s] = keys(s)
		}
		b.StartTimer()
		for s := range sets {
			for _, k := range all[s] {
				sets[s].add(k)
			}
		}
		b.StopTimer()
		all = nil // the keys live on only if the set keeps them
		runtime.GC()
		runtime.ReadMemStats(&after)
		perSession = (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / sessions
		runtime.KeepAlive(sets)
		b.StartTimer()
	}
	b.ReportMetric(perSession, "live-B/session")
}
