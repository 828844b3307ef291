package metrics

import "github.com/prometheus/client_golang/prometheus"

// DeadLetterCounters count what the API's dead-letter routes did; they implement
// api.DeadLetterMetrics.
type DeadLetterCounters struct {
	listed, redriven prometheus.Counter
}

// RegisterDeadLetters adds wagate_dead_letters_listed_total and wagate_dead_letters_redriven_total
// to the registry (at 0, in every mode, so dashboards and alerts find them from the start) and
// returns them. Call it once.
func (m *Metrics) RegisterDeadLetters() *DeadLetterCounters {
	c := &DeadLetterCounters{
		listed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wagate_dead_letters_listed_total",
			Help: "Dead letters returned by GET /dead-letters.",
		}),
		redriven: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wagate_dead_letters_redriven_total",
			Help: "Dead letters re-appended to the outbox (original event id and version) by POST /dead-letters/redrive.",
		}),
	}
	m.Registry.MustRegister(c.listed, c.redriven)
	return c
}

// DeadLettersListed counts n dead letters listed.
func (c *DeadLetterCounters) DeadLettersListed(n int) { c.listed.Add(float64(n)) }

// DeadLettersRedriven counts n dead letters re-driven.
func (c *DeadLetterCounters) DeadLettersRedriven(n int) { c.redriven.Add(float64(n)) }
