package cpuset

import (
	"math"
	"runtime/metrics"
	"time"
)

// GoDelays is a reading of this process's Go runtime delays: how long its goroutines were
// runnable before they ran (/sched/latencies:seconds) and how long the world was stopped
// (/sched/pauses/total/gc:seconds and other stops). In the load generator a poller whose answer
// has arrived waits that long before it can take the time: a delay the client measures as the
// gateway's latency although the gateway had answered.
type GoDelays struct {
	Sched, Pauses Histogram
}

// Histogram is a cumulative runtime/metrics histogram: Counts[i] values in [Buckets[i],
// Buckets[i+1]).
type Histogram struct {
	Counts  []uint64
	Buckets []float64
}

// ReadGoDelays reads the process's delays so far.
func ReadGoDelays() GoDelays {
	s := []metrics.Sample{{Name: "/sched/latencies:seconds"}, {Name: "/sched/pauses/total/other:seconds"}, {Name: "/sched/pauses/total/gc:seconds"}}
	metrics.Read(s)
	hist := func(v metrics.Value) Histogram {
		if v.Kind() != metrics.KindFloat64Histogram {
			return Histogram{}
		}
		h := v.Float64Histogram()
		return Histogram{Counts: append([]uint64(nil), h.Counts...), Buckets: append([]float64(nil), h.Buckets...)}
	}
	d := GoDelays{Sched: hist(s[0].Value), Pauses: hist(s[2].Value)}
	if other := hist(s[1].Value); len(other.Counts) == len(d.Pauses.Counts) {
		for i, n := range other.Counts {
			d.Pauses.Counts[i] += n
		}
	}
	return d
}

// Sub is what was recorded between earlier and d.
func (d GoDelays) Sub(earlier GoDelays) GoDelays {
	return GoDelays{Sched: d.Sched.Sub(earlier.Sched), Pauses: d.Pauses.Sub(earlier.Pauses)}
}

// Sub is the histogram of what was recorded between earlier and h (h itself when their buckets
// differ, or earlier is empty).
func (h Histogram) Sub(earlier Histogram) Histogram {
	if len(earlier.Counts) != len(h.Counts) {
		return h
	}
	out := Histogram{Counts: make([]uint64, len(h.Counts)), Buckets: h.Buckets}
	for i, n := range h.Counts {
		if n >= earlier.Counts[i] {
			out.Counts[i] = n - earlier.Counts[i]
		}
	}
	return out
}

// Count is the number of values recorded.
func (h Histogram) Count() uint64 {
	var n uint64
	for _, c := range h.Counts {
		n += c
	}
	return n
}

// Quantile is the upper bound of the bucket holding quantile q (0 < q <= 1), never below the true
// value; the lower bound of the last finite bucket for values beyond it; 0 when nothing was
// recorded.
func (h Histogram) Quantile(q float64) time.Duration {
	total := h.Count()
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	if rank == 0 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.Counts {
		seen += c
		if seen >= rank {
			hi := h.Buckets[i+1]
			if math.IsInf(hi, 1) {
				hi = h.Buckets[i]
			}
			return time.Duration(hi * float64(time.Second))
		}
	}
	return time.Duration(h.Buckets[len(h.Buckets)-1] * float64(time.Second))
}

// Max is the upper bound of the highest bucket that holds a value (see Quantile).
func (h Histogram) Max() time.Duration { return h.Quantile(1) }

// Sum is an upper bound of the total of the values (each counted at its bucket's upper bound).
func (h Histogram) Sum() time.Duration {
	var s float64
	for i, c := range h.Counts {
		if c == 0 {
			continue
		}
		hi := h.Buckets[i+1]
		if math.IsInf(hi, 1) {
			hi = h.Buckets[i]
		}
		s += float64(c) * hi
	}
	return time.Duration(s * float64(time.Second))
}
