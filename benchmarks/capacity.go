package benchmarks

import (
	"context"
	"math"

	"wagate/reports"
)

// Probe runs the scenario with a user count and reports whether every threshold held, which
// thresholds failed, and the probe's output folder.
type Probe func(ctx context.Context, users int) (ok bool, failed []string, dir string, err error)

// SearchCapacity finds the largest user count for which probe holds: it steps up from c.Start,
// multiplying by c.Factor while the probe holds (up to c.Limit), then bisects between the last
// holding and the first failing count until the bracket is narrower than c.Precision x the lower
// bound or c.Granularity users. MaxUsers is 0 when even c.Start fails and the bisection below it
// finds nothing. The search assumes that a count that fails would also fail with more users.
func SearchCapacity(ctx context.Context, c Capacity, probe Probe) (reports.CapacityResult, error) {
	res := reports.CapacityResult{Name: c.Name, Mode: c.Mode, Limit: c.Limit}
	run := func(users int) (bool, error) {
		ok, failed, dir, err := probe(ctx, users)
		if err != nil {
			return false, err
		}
		res.Steps = append(res.Steps, reports.CapacityStep{Users: users, OK: ok, Dir: dir, Failed: failed})
		return ok, nil
	}
	gran := max(1, c.Granularity)
	lo, hi := 0, 0 // lo holds (0: nothing known to hold), hi fails (0: nothing failed yet)
	for users := c.Start; ; {
		ok, err := run(users)
		if err != nil {
			return res, err
		}
		if !ok {
			hi = users
			break
		}
		lo = users
		if users >= c.Limit {
			res.MaxUsers = lo
			return res, nil
		}
		users = min(c.Limit, int(math.Ceil(float64(users)*c.Factor)))
	}
	for {
		width := max(float64(gran), c.Precision*float64(lo))
		if float64(hi-lo) <= width {
			break
		}
		mid := lo + (hi-lo)/2
		mid = mid / gran * gran
		if mid <= lo || mid >= hi {
			break
		}
		ok, err := run(mid)
		if err != nil {
			return res, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	res.MaxUsers = lo
	return res, nil
}
