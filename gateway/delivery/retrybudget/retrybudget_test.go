package retrybudget

import (
	"math"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// TestWithdrawLetsARetryGoOnlyWithAWholeRetryInTheBalance is the budget's decision, row by row:
// the floor accrues per second, first attempts deposit their percentage, the burst caps both.
func TestWithdrawLetsARetryGoOnlyWithAWholeRetryInTheBalance(t *testing.T) {
	c := Config{Percent: 20, MinPerSecond: 1, Burst: 2}
	for _, tc := range []struct {
		name    string
		s       State
		now     time.Time
		ok      bool
		balance float64
		wait    time.Duration
	}{
		{"a full budget lets a retry go", State{2, at(0)}, at(0), true, 1, 0},
		{"one whole retry left: it goes", State{1, at(0)}, at(0), true, 0, 0},
		{"an empty budget holds the retry for a second of floor", State{0, at(0)}, at(0), false, 0, time.Second},
		{"half a retry: held half a second", State{0.5, at(0)}, at(0), false, 0.5, 500 * time.Millisecond},
		{"the floor refills: 0 then 1 s later a retry", State{0, at(0)}, at(1000), true, 0, 0},
		{"the floor refills only partly in 400 ms", State{0.2, at(0)}, at(400), false, 0.6, 400 * time.Millisecond},
		{"the refill stops at the burst", State{1.5, at(0)}, at(10_000), true, 1, 0},
		{"a clock that went back refills nothing", State{0.5, at(1000)}, at(0), false, 0.5, 500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, ok, wait := c.Withdraw(tc.s, tc.now)
			if ok != tc.ok || math.Abs(s.Balance-tc.balance) > 1e-9 || wait != tc.wait {
				t.Errorf("Withdraw = balance %v ok %v wait %v; want %v %v %v", s.Balance, ok, wait, tc.balance, tc.ok, tc.wait)
			}
		})
	}
}

func TestDepositAddsThePercentageOfARetryUpToTheBurst(t *testing.T) {
	c := Config{Percent: 20, MinPerSecond: 1, Burst: 2}
	for _, tc := range []struct {
		name    string
		s       State
		now     time.Time
		balance float64
	}{
		{"a first attempt adds a fifth of a retry", State{0, at(0)}, at(0), 0.2},
		{"five first attempts make one retry", State{0.8, at(0)}, at(0), 1},
		{"with the floor accrued meanwhile", State{0, at(0)}, at(500), 0.7},
		{"never above the burst", State{1.9, at(0)}, at(0), 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if s := c.Deposit(tc.s, tc.now); math.Abs(s.Balance-tc.balance) > 1e-9 {
				t.Errorf("balance %v; want %v", s.Balance, tc.balance)
			}
		})
	}
}

func TestValidateRefusesNegativeFieldsAndAPercentAboveTheMaximum(t *testing.T) {
	for _, tc := range []struct {
		c  Config
		ok bool
	}{
		{Config{}, true},
		{DefaultConfig(), true},
		{Config{Percent: MaxPercent}, true},
		{Config{Percent: MaxPercent + 1}, false},
		{Config{Percent: -1}, false},
		{Config{MinPerSecond: -1}, false},
		{Config{Burst: -1}, false},
	} {
		if err := tc.c.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v: Validate() = %v; want ok %v", tc.c, err, tc.ok)
		}
	}
	if got := (Config{}).Filled(); got != DefaultConfig() {
		t.Errorf("zero config filled = %+v; want the defaults %+v", got, DefaultConfig())
	}
}

// TestRetriesNeverExceedTheBound drives a budget with a retry wanted every 10 ms (Laravel failing
// everything) while first attempts arrive at 13/s, and checks that the retries let through in
// every 2 s span stay within Bound, and that the budget does hand out what the bound allows (no
// starvation): at least the floor plus the deposits, less the burst.
func TestRetriesNeverExceedTheBound(t *testing.T) {
	c := Config{Percent: 20, MinPerSecond: 1, Burst: 2}
	b := New(c, at(0))
	const span = 2000 // ms
	var retries, firsts []int
	for ms := 0; ms < 20_000; ms += 10 {
		now := at(ms)
		if ms%77 < 10 { // ~13 first attempts per second
			b.FirstAttempt(now)
			firsts = append(firsts, ms)
		}
		if ok, _ := b.Retry(now); ok {
			retries = append(retries, ms)
		}
	}
	count := func(xs []int, from, to int) (n int) {
		for _, x := range xs {
			if x >= from && x < to {
				n++
			}
		}
		return n
	}
	for from := 0; from+span <= 20_000; from += 100 {
		r, f := count(retries, from, from+span), count(firsts, from, from+span)
		if bound := c.Bound(span*time.Millisecond, float64(f)); float64(r) > bound {
			t.Fatalf("%d retries in [%d ms, %d ms) with %d first attempts; the bound is %.1f", r, from, from+span, f, bound)
		}
		if low := float64(c.MinPerSecond)*2 + 0.2*float64(f) - float64(c.Burst) - 1; float64(r) < low {
			t.Fatalf("only %d retries in [%d ms, %d ms) with %d first attempts; the budget allows at least %.1f", r, from, from+span, f, low)
		}
	}
	if b.Held() == 0 {
		t.Fatal("no retry held although one was wanted every 10 ms")
	}
}

func TestARefundedRetryIsGivenBack(t *testing.T) {
	b := New(Config{Percent: 20, MinPerSecond: 1, Burst: 1}, at(0))
	if ok, _ := b.Retry(at(0)); !ok {
		t.Fatal("a full budget held a retry")
	}
	if ok, _ := b.Retry(at(0)); ok {
		t.Fatal("an empty budget let a retry go")
	}
	b.Refund(at(0))
	if ok, _ := b.Retry(at(0)); !ok {
		t.Fatal("the refunded retry was not given back")
	}
	if b.Held() != 1 {
		t.Fatalf("held %d; want 1", b.Held())
	}
}
