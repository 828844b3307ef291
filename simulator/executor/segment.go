package executor

import (
	"fmt"
	"math/big"
	"strings"
)

// Segment is one k6 execution segment: the half-open share (From, To] of the whole test that one
// simulator instance runs. The zero value is not valid; use Full or ParseSegment.
type Segment struct {
	From, To *big.Rat
}

// Full is the segment 0:1 — the whole test on one instance.
func Full() Segment { return Segment{From: new(big.Rat), To: big.NewRat(1, 1)} }

// String renders the segment as k6 does, e.g. "1/3:2/3".
func (s Segment) String() string { return ratString(s.From) + ":" + ratString(s.To) }

// Length is To-From.
func (s Segment) Length() *big.Rat { return new(big.Rat).Sub(s.To, s.From) }

func ratString(r *big.Rat) string {
	if r.IsInt() {
		return r.Num().String()
	}
	return r.String()
}

// parseRat reads "1/3", "0.25", "25%" or "1".
func parseRat(s string) (*big.Rat, error) {
	s = strings.TrimSpace(s)
	if strings.HasSuffix(s, "%") {
		r, ok := new(big.Rat).SetString(strings.TrimSuffix(s, "%"))
		if !ok {
			return nil, fmt.Errorf("%q is not a percentage", s)
		}
		return r.Quo(r, big.NewRat(100, 1)), nil
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return nil, fmt.Errorf("%q is not a number or fraction", s)
	}
	return r, nil
}

// ParseSegment reads a k6 --execution-segment value: "from:to" (fractions, decimals or
// percentages) or a single value v meaning "0:v". An empty string is the full segment.
func ParseSegment(s string) (Segment, error) {
	if strings.TrimSpace(s) == "" {
		return Full(), nil
	}
	fromS, toS, found := strings.Cut(s, ":")
	if !found {
		fromS, toS = "0", s
	}
	from, err := parseRat(fromS)
	if err != nil {
		return Segment{}, fmt.Errorf("execution segment %q: %w", s, err)
	}
	to, err := parseRat(toS)
	if err != nil {
		return Segment{}, fmt.Errorf("execution segment %q: %w", s, err)
	}
	zero, one := new(big.Rat), big.NewRat(1, 1)
	if from.Cmp(zero) < 0 || to.Cmp(one) > 0 || from.Cmp(to) >= 0 {
		return Segment{}, fmt.Errorf("execution segment %q: segment start must be smaller than its end and both within 0 and 1", s)
	}
	return Segment{From: from, To: to}, nil
}

// Sequence is a k6 --execution-segment-sequence: ordered points 0 = p0 < p1 < ... < pn = 1 whose
// consecutive pairs are the segments of all instances of one distributed run.
type Sequence []*big.Rat

// ParseSequence reads "0,1/3,2/3,1". An empty string yields nil (no sequence given).
func ParseSequence(s string) (Sequence, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var seq Sequence
	for _, part := range strings.Split(s, ",") {
		r, err := parseRat(part)
		if err != nil {
			return nil, fmt.Errorf("execution segment sequence %q: %w", s, err)
		}
		if len(seq) > 0 && r.Cmp(seq[len(seq)-1]) <= 0 {
			return nil, fmt.Errorf("execution segment sequence %q: values must be strictly increasing", s)
		}
		seq = append(seq, r)
	}
	if len(seq) < 2 || seq[0].Sign() != 0 || seq[len(seq)-1].Cmp(big.NewRat(1, 1)) != 0 {
		return nil, fmt.Errorf("execution segment sequence %q: it must start at 0 and end at 1", s)
	}
	return seq, nil
}

// EvenSequence returns the sequence that splits the test into n equal segments.
func EvenSequence(n int) Sequence {
	seq := make(Sequence, n+1)
	for i := range seq {
		seq[i] = big.NewRat(int64(i), int64(n))
	}
	return seq
}

// Tuple is one instance's view of a distributed run: its segment within the sequence. It scales
// VU counts and picks the arrival-rate iterations this instance runs, so that the shares of all
// instances of the sequence add up exactly to the whole, each computed alone.
type Tuple struct {
	Segment Segment
	index   int   // index of Segment within the sequence
	owner   []int // owner[k]: segment index owning slot k of the stripe cycle
}

// NewTuple places seg in seq. With a nil seq the sequence is 0, From, To, 1 (without empty
// segments), as in k6.
func NewTuple(seg Segment, seq Sequence) (*Tuple, error) {
	if seg.From == nil || seg.To == nil {
		seg = Full()
	}
	if seq == nil {
		seq = Sequence{new(big.Rat)}
		for _, p := range []*big.Rat{seg.From, seg.To, big.NewRat(1, 1)} {
			if p.Cmp(seq[len(seq)-1]) > 0 {
				seq = append(seq, p)
			}
		}
	}
	index := -1
	for i := 0; i+1 < len(seq); i++ {
		if seq[i].Cmp(seg.From) == 0 && seq[i+1].Cmp(seg.To) == 0 {
			index = i
		}
	}
	if index < 0 {
		return nil, fmt.Errorf("execution segment %s is not one of the segments of the sequence %s", seg, seq)
	}
	return &Tuple{Segment: seg, index: index, owner: stripe(seq)}, nil
}

// String renders the sequence as k6 does.
func (s Sequence) String() string {
	parts := make([]string, len(s))
	for i, r := range s {
		parts[i] = ratString(r)
	}
	return strings.Join(parts, ",")
}

// stripe lays the segments' shares over one cycle of L slots, L being the least common
// denominator of the sequence, so that each segment owns exactly length*L slots spread as evenly as
// possible: slot k goes to the segment furthest behind its fair share after k+1 slots (ties to the
// larger share, then the lower index). Every instance computes the same cycle.
func stripe(seq Sequence) []int {
	lcd := big.NewInt(1)
	for _, r := range seq {
		d := r.Denom()
		g := new(big.Int).GCD(nil, nil, lcd, d)
		lcd.Mul(lcd, new(big.Int).Quo(d, g))
	}
	if !lcd.IsInt64() || lcd.Int64() > 1<<20 {
		// Pathological sequences fall back to a coarse cycle; shares still sum to the total
		// because each unit still has exactly one owner.
		lcd = big.NewInt(1 << 20)
	}
	L := lcd.Int64()
	n := len(seq) - 1
	slots := make([]int64, n) // slots each segment must own in a cycle
	var assignedTotal int64
	for i := 0; i < n; i++ {
		length := new(big.Rat).Sub(seq[i+1], seq[i])
		v := new(big.Rat).Mul(length, big.NewRat(L, 1))
		slots[i] = roundHalfUp(v)
		assignedTotal += slots[i]
	}
	slots[n-1] += L - assignedTotal // only ever non-zero for the coarse fallback
	owner := make([]int, L)
	got := make([]int64, n)
	for k := int64(0); k < L; k++ {
		best := -1
		var bestNum, bestDen int64 // deficit = slots*(k+1)/L - got, compared as fractions over L
		for i := 0; i < n; i++ {
			if got[i] >= slots[i] {
				continue
			}
			num := slots[i]*(k+1) - got[i]*L
			if best < 0 || num > bestNum || (num == bestNum && slots[i] > bestDen) {
				best, bestNum, bestDen = i, num, slots[i]
			}
		}
		owner[k] = best
		got[best]++
	}
	return owner
}

func roundHalfUp(r *big.Rat) int64 {
	half := new(big.Rat).Add(r, big.NewRat(1, 2))
	q := new(big.Int).Quo(half.Num(), half.Denom())
	return q.Int64()
}

// Owns reports whether unit k (an iteration number of a global arrival schedule, or the k-th VU)
// belongs to this instance.
func (t *Tuple) Owns(k int64) bool {
	if t == nil {
		return true
	}
	return t.owner[k%int64(len(t.owner))] == t.index
}

// Scale returns this instance's share of value units: how many of the units 0..value-1 it owns.
// The shares of all segments of a sequence sum to value.
func (t *Tuple) Scale(value int64) int64 {
	if t == nil || value <= 0 {
		if value < 0 {
			return 0
		}
		return value
	}
	L := int64(len(t.owner))
	var perCycle int64
	for _, o := range t.owner {
		if o == t.index {
			perCycle++
		}
	}
	n := (value / L) * perCycle
	for k := int64(0); k < value%L; k++ {
		if t.owner[k] == t.index {
			n++
		}
	}
	return n
}

// ScaleRate returns this instance's share of a rate (iterations per time unit), exact for a
// fraction: rate * length.
func (t *Tuple) ScaleRate(rate float64) float64 {
	if t == nil {
		return rate
	}
	f, _ := t.Segment.Length().Float64()
	return rate * f
}

// Index is the position of this instance's segment within its sequence (0 for the first).
func (t *Tuple) Index() int {
	if t == nil {
		return 0
	}
	return t.index
}
