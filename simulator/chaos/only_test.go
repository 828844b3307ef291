package chaos

import (
	"slices"
	"testing"
)

func TestOnlyPicksTheNamedSchedulesOfTheDraw(t *testing.T) {
	all := make([]Schedule, 50)
	for i := range all {
		all[i] = Schedule{Index: i, Seed: uint64(1000 + i)}
	}
	cases := []struct {
		flag    string
		want    []int // indexes played
		wantErr bool
	}{
		{"", seq(50), false},
		{"42", []int{42}, false},
		{" 3, 42 ,7", []int{3, 42, 7}, false},
		{"3,,7,", []int{3, 7}, false},
		{"50", nil, true},
		{"-1", nil, true},
		{"x", nil, true},
	}
	for _, c := range cases {
		only, err := ParseOnly(c.flag)
		var got []Schedule
		if err == nil {
			got, err = onlySchedules(all, only)
		}
		if (err != nil) != c.wantErr {
			t.Errorf("-only %q: err %v; want error %v", c.flag, err, c.wantErr)
			continue
		}
		var idx []int
		for _, s := range got {
			idx = append(idx, s.Index)
			if s.Seed != uint64(1000+s.Index) {
				t.Errorf("-only %q: schedule %d has seed %d; want the draw's own", c.flag, s.Index, s.Seed)
			}
		}
		if !slices.Equal(idx, c.want) {
			t.Errorf("-only %q plays %v; want %v", c.flag, idx, c.want)
		}
	}
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}
