package metrics

import "testing"

// counterValues gathers the registry's counters by name.
func counterValues(t *testing.T, m *Metrics) map[string]float64 {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, mt := range f.GetMetric() {
			if c := mt.GetCounter(); c != nil && len(mt.GetLabel()) == 0 {
				out[f.GetName()] = c.GetValue()
			}
		}
	}
	return out
}

func TestDeadLetterCountersExistFromTheStartAndCount(t *testing.T) {
	m := New()
	c := m.RegisterDeadLetters()
	check := func(when string, listed, redriven float64) {
		t.Helper()
		got := counterValues(t, m)
		for name, want := range map[string]float64{"wagate_dead_letters_listed_total": listed, "wagate_dead_letters_redriven_total": redriven} {
			if v, ok := got[name]; !ok || v != want {
				t.Fatalf("%s: %s = %v (present %v), want %v", when, name, v, ok, want)
			}
		}
	}
	check("before any use", 0, 0)
	c.DeadLettersListed(3)
	c.DeadLettersRedriven(2)
	c.DeadLettersRedriven(5)
	check("after use", 3, 7)
}
