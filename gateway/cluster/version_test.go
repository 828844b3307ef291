package cluster

import "testing"

func TestVersionsAreEpochTimesAMillionPlusSeqAndATakeoverJumpsAboveTheZombie(t *testing.T) {
	cases := []struct {
		epoch, seq, want int64
	}{
		{1_800_000_000, 1, 1_800_000_000_000_001},
		{1_800_000_000, VersionsPerEpoch - 1, 1_800_000_000_999_999},
		{1_800_000_001, 1, 1_800_000_001_000_001},
	}
	for _, c := range cases {
		if got := Version(c.epoch, c.seq); got != c.want || EpochOf(got) != c.epoch {
			t.Errorf("Version(%d, %d) = %d (epoch %d), want %d", c.epoch, c.seq, got, EpochOf(got), c.want)
		}
	}
	// The last version of an epoch stays below the first of the next: a holder at epoch+1 always
	// beats a zombie still at epoch, however many events the zombie emitted.
	if Version(1_800_000_000, VersionsPerEpoch-1) >= Version(1_800_000_001, 1) {
		t.Fatal("a zombie's last version is not below the successor's first")
	}
	// Epochs near Unix seconds keep versions exact in JSON (below 2^53) until the year 2255.
	if v := Version(9_000_000_000, VersionsPerEpoch-1); v >= 1<<53 {
		t.Fatalf("Version at epoch 9e9 = %d, not below 2^53", v)
	}
}
