package reports

import "testing"

func TestEachDesignTargetIsWrittenFromItsBound(t *testing.T) {
	want := []string{">= 100x fewer", "<= 10 ms", "<= 1 s", "<= 5% of a core", "<= 300 KiB", "0", ">= 10,000"}
	if len(DesignTargets) != len(want) {
		t.Fatalf("%d design targets, want %d", len(DesignTargets), len(want))
	}
	for i, spec := range DesignTargets {
		if got := spec.Bound.Text(spec.Scope.unit(spec.Figure)); got != want[i] {
			t.Errorf("%s: limit written %q, want %q", spec.Name, got, want[i])
		}
	}
}

func TestABoundHoldsAtItsLimit(t *testing.T) {
	cases := []struct {
		bound Bound
		v     float64
		holds bool
	}{
		{Bound{"<=", 10}, 10, true},
		{Bound{"<=", 10}, 10.01, false},
		{Bound{">=", 100}, 100, true},
		{Bound{">=", 100}, 99.9, false},
		{Bound{"==", 0}, 0, true},
		{Bound{"==", 0}, 1, false},
	}
	for _, c := range cases {
		if got := c.bound.Holds(c.v); got != c.holds {
			t.Errorf("%s holds for %v = %v, want %v", c.bound.Text(""), c.v, got, c.holds)
		}
	}
}
