package conform

import (
	"testing"

	"wagate/gateway/cluster"
)

// A target that orders versions by their sequence part only (as if it kept version mod 1e6, or a
// 32-bit column that lost the epoch) applies a replaced replica's late writes: the fencing check
// fails, naming it.
func TestRejectsATargetThatLosesTheEpoch(t *testing.T) {
	broken := rewriteBatch(fake(t, nil), func(items []map[string]any) {
		for _, it := range items {
			if v, ok := it["version"].(float64); ok {
				it["version"] = int64(v) % cluster.VersionsPerEpoch
			}
		}
	})
	rep, out := run(t, broken, nil)
	failedContain(t, rep, out, lateEpochCheck)
}
