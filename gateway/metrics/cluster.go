package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"wagate/gateway/session"
)

// FencedRegistryRefused is wagate_cluster_fenced_writes_total's where label of a registry write
// the database's conditional upsert refused; the session layer's own labels are
// session.FencedEvent, FencedRegistry, FencedConnect and FencedLogout.
const FencedRegistryRefused = "registry_refused"

// fencedWhere are the where labels created at 0.
var fencedWhere = []string{session.FencedEvent, session.FencedRegistry, session.FencedConnect, session.FencedLogout, FencedRegistryRefused}

// ClusterMetrics are cluster mode's metrics (wagate_cluster_*). Register them with
// RegisterCluster; every series exists at 0 from the start.
type ClusterMetrics struct {
	members, held                     prometheus.Gauge
	claims, losses, handoffs, fencing prometheus.Counter
	fencedWrites                      *prometheus.CounterVec
	takeover                          prometheus.Histogram
}

// RegisterCluster adds the cluster metrics to the registry and returns them. Call it once, in
// cluster mode only.
func (m *Metrics) RegisterCluster() *ClusterMetrics {
	c := &ClusterMetrics{
		members: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wagate_cluster_members",
			Help: "Live cluster members (replicas with a live lease in Redis) at this replica's last rebalancing round.",
		}),
		held: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wagate_cluster_shards_held",
			Help: "Shards this replica holds.",
		}),
		claims: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wagate_cluster_shard_claims_total",
			Help: "Shards this replica claimed (free, released by another replica, or orphaned by a dead one).",
		}),
		losses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wagate_cluster_shard_losses_total",
			Help: "Shards this replica found held by another replica or at a newer epoch at a lease renew.",
		}),
		handoffs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wagate_cluster_shard_handoffs_total",
			Help: "Shards this replica handed over to the replica they are now assigned to (queues flushed, clients disconnected, released).",
		}),
		fencing: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wagate_cluster_member_fenced_total",
			Help: "Times this replica's membership was fenced (lease expired, or no renew within the renew deadline); it dropped every session and joined again.",
		}),
		fencedWrites: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wagate_cluster_fenced_writes_total",
			Help: "Writes refused because a newer epoch holds the session's shard, by where: event (not emitted), registry (not written), registry_refused (the registry's conditional upsert refused it), connect (a reconnect to WhatsApp refused by the fence check), logout (a logout refused by it).",
		}, []string{"where"}),
		takeover: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "wagate_cluster_takeover_seconds",
			Help:    "From a rebalancing round's shard claims until the paired sessions they brought in finished reconnecting.",
			Buckets: []float64{.1, .25, .5, 1, 2.5, 5, 10, 15, 20, 30, 60, 120},
		}),
	}
	for _, w := range fencedWhere {
		c.fencedWrites.WithLabelValues(w)
	}
	m.Registry.MustRegister(c.members, c.held, c.claims, c.losses, c.handoffs, c.fencing, c.fencedWrites, c.takeover)
	return c
}

// SetMembers records the live members seen.
func (c *ClusterMetrics) SetMembers(n int) { c.members.Set(float64(n)) }

// SetHeld records the shards held.
func (c *ClusterMetrics) SetHeld(n int) { c.held.Set(float64(n)) }

// Claimed counts n shards claimed.
func (c *ClusterMetrics) Claimed(n int) { c.claims.Add(float64(n)) }

// Lost counts a shard lost.
func (c *ClusterMetrics) Lost() { c.losses.Inc() }

// HandedOver counts a shard handed over.
func (c *ClusterMetrics) HandedOver() { c.handoffs.Inc() }

// MemberFenced counts a fencing of this replica's membership.
func (c *ClusterMetrics) MemberFenced() { c.fencing.Inc() }

// FencedWrite counts a write refused for an older epoch, where it was refused.
func (c *ClusterMetrics) FencedWrite(where string) { c.fencedWrites.WithLabelValues(where).Inc() }

// ObserveTakeover records how long a takeover took.
func (c *ClusterMetrics) ObserveTakeover(d time.Duration) { c.takeover.Observe(d.Seconds()) }
