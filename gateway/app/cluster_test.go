package app_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"

	"wagate/fakelaravel"
	"wagate/gateway/app"
	"wagate/gateway/cluster"
	"wagate/gateway/config"
	"wagate/gateway/internal/pgtest"
	"wagate/gateway/laravel"
	"wagate/internal/proctest"
	"wagate/internal/redistest"
	"wagate/simulator/fakewa"
)

// Cluster settings of the in-process replicas: few shards and a short lease (renew every
// 400 ms, fenced after 1.2 s without a renew), so moves and takeovers happen within seconds.
const (
	testShards   = 8
	testLeaseTTL = 2 * time.Second
)

// clusterWorld is fakewa, fakelaravel, one redis-server and one Postgres shared by in-process
// gateway replicas in cluster mode.
type clusterWorld struct {
	*inProcess // fakewa and fakelaravel; its own gateway is never started: the replicas are
	redisURL   string
	dsn        string
	first      *replica
}

// replica is one in-process gateway of the cluster.
type replica struct {
	name   string
	gw     *app.App
	c      *client
	cancel context.CancelFunc
	done   chan error
}

func (w *clusterWorld) gatewayURL() string                 { return w.first.c.base }
func (w *clusterWorld) restartGateway(ctx context.Context) { w.t.Fatal("not used") }

func newClusterWorld(t *testing.T) *clusterWorld {
	if testing.Short() {
		t.Skip("starts redis-server, PostgreSQL and several gateways")
	}
	w := &clusterWorld{inProcess: &inProcess{t: t, wa: startFakewa(t, fakewa.ReceiptsNone)}, redisURL: redistest.Real(t).URL(), dsn: pgtest.Start(t)}
	w.laravel, w.lsrv = startFakeLaravel(t, fakelaravel.Config{})
	return w
}

// start runs replica name on redisURL (the shared Redis, or a proxy in front of it) and waits
// until it is ready (joined, first claims made).
func (w *clusterWorld) start(name, redisURL string) *replica {
	w.t.Helper()
	return w.startWith(name, redisURL, nil)
}

// startWith is start with configure applied to the replica's settings last.
func (w *clusterWorld) startWith(name, redisURL string, configure func(*config.Config)) *replica {
	t := w.t
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	cfg := gatewayConfig(t, config.ModeBatch, w.wa, w.lsrv.URL)
	cfg.Addr, cfg.RedisEmbedded, cfg.RedisURL, cfg.StoreDSN = addr, false, redisURL, w.dsn
	cfg.Cluster, cfg.GatewayID, cfg.AdvertiseURL = true, name, "http://"+addr
	cfg.ClusterShards, cfg.ClusterLeaseTTL = testShards, testLeaseTTL
	// A SIGTERM hands the shards to the others at once: the replicas here leave for good (the
	// wait for a restart is the process tests' rolling update).
	cfg.ClusterRestartGrace = 0
	cfg.Batch.Interval = 200 * time.Millisecond
	if configure != nil {
		configure(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	gw, err := app.New(ctx, cfg, testLogger())
	if err != nil {
		cancel()
		t.Fatalf("%s: %v", name, err)
	}
	r := &replica{name: name, gw: gw, cancel: cancel, done: make(chan error, 1),
		c: &client{t: t, base: "http://" + gw.Addr(), hc: &http.Client{Timeout: 10 * time.Second}}}
	go func() { r.done <- gw.Run(ctx) }()
	t.Cleanup(func() { r.stop(t, false) })
	proctest.Eventually(t, name+" ready", 30*time.Second, func() (bool, string) {
		code := r.c.call("GET", "/readyz", nil, nil)
		return code == 200, fmt.Sprint(code)
	})
	if w.first == nil {
		w.first = r
	}
	return r
}

// stop shuts r down (SIGTERM); with check, an error fails the test.
func (r *replica) stop(t *testing.T, check bool) {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil && check {
			t.Errorf("%s shutdown: %v", r.name, err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("%s did not shut down within 30 s", r.name)
	}
}

// connected reports whether r runs session id with its WhatsApp connection up.
func (r *replica) connected(id string) bool {
	info, err := r.gw.Manager().Get(context.Background(), id)
	return err == nil && info.Connected
}

// metric returns the value of a sample line of r's /metrics ("" when absent).
func (r *replica) metric(t *testing.T, series string) string {
	if lines := metricLines(r.c.metrics(), series+" "); len(lines) > 0 {
		return strings.TrimPrefix(lines[0], series+" ")
	}
	return ""
}

// runners watches the replicas every few milliseconds and records any moment two of them run
// the same session connected: the one thing cluster mode exists to prevent.
type runners struct {
	mu         sync.Mutex
	replicas   []*replica
	violations []string
	stop       chan struct{}
	done       chan struct{}
}

func watchRunners(ids []string) *runners {
	w := &runners{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
			}
			w.mu.Lock()
			for _, id := range ids {
				var on []string
				for _, r := range w.replicas {
					if r.connected(id) {
						on = append(on, r.name)
					}
				}
				if len(on) > 1 && len(w.violations) < 20 {
					w.violations = append(w.violations, fmt.Sprintf("%s connected on %v", id, on))
				}
			}
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *runners) add(r *replica) { w.mu.Lock(); w.replicas = append(w.replicas, r); w.mu.Unlock() }

func (w *runners) finish(t *testing.T) {
	close(w.stop)
	<-w.done
	for _, v := range w.violations {
		t.Errorf("two replicas ran a session at once: %s", v)
	}
}

// pickSessions returns session ids such that, for each joiner, rendezvous hashing over
// {stay, joiner} gives the joiner at least n of them and leaves stay at least one: every
// replica of the test has sessions to take over and to give back.
func pickSessions(n int, stay string, joiners ...string) []string {
	var ids []string
	need := func(id string) bool {
		for _, j := range joiners {
			if assignedTo(id, stay, j) == j && countAssigned(ids, stay, j, j) < n {
				return true
			}
			if assignedTo(id, stay, j) == stay && countAssigned(ids, stay, j, stay) < 1 {
				return true
			}
		}
		return false
	}
	for i := 0; i < 10_000; i++ {
		if id := fmt.Sprintf("cl_%d", i); need(id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// assignedTo is the replica rendezvous hashing gives id's shard when a and b are live.
func assignedTo(id, a, b string) string {
	return cluster.Assign(cluster.Shard(id, testShards), []string{a, b})
}

func countAssigned(ids []string, a, b, to string) int {
	n := 0
	for _, id := range ids {
		if assignedTo(id, a, b) == to {
			n++
		}
	}
	return n
}

// runOn returns the ids assigned to to when a and b are live.
func runOn(ids []string, a, b, to string) []string {
	var out []string
	for _, id := range ids {
		if assignedTo(id, a, b) == to {
			out = append(out, id)
		}
	}
	return out
}

// Cluster mode end to end, in-process: replicas on one redis-server and one Postgres split the
// sessions by shard, and each session runs on exactly one replica at every moment (sampled every
// 5 ms, and fakewa never saw a connection replaced) while a replica joins (shards handed over:
// flushed, disconnected, released, claimed at epoch+1), is cut from Redis (it fences itself and
// drops its sessions before its lease ends; another replica takes them after the lease), leaves
// with SIGTERM (its shards are taken at once), and is killed (its shards are taken after the
// lease). Laravel's view of every session stays connected, with versions that only grow.
func TestClusterReplicasRunEachSessionOnceThroughMovesCutsAndKills(t *testing.T) {
	w := newClusterWorld(t)
	ctx := context.Background()
	ids := pickSessions(2, "gw-1", "gw-2", "gw-3", "gw-4")
	t.Logf("sessions %v", ids)
	watch := watchRunners(ids)

	// gw-1 alone holds every shard: it pairs every session.
	gw1 := w.start("gw-1", w.redisURL)
	watch.add(gw1)
	jids := map[string]types.JID{}
	for i, id := range ids {
		jids[id] = startAndPair(t, ctx, w, gw1.c, id, fmt.Sprintf("1555888%04d", i))
	}
	versions := map[string]int64{}
	recordVersions := func(when string) {
		t.Helper()
		for _, id := range ids {
			s, _ := laravelSession(ctx, w, id)
			if s.StatusVersion < versions[id] {
				t.Errorf("%s: Laravel's status version of %s went back from %d to %d", when, id, versions[id], s.StatusVersion)
			}
			versions[id] = s.StatusVersion
		}
	}
	recordVersions("paired on gw-1")
	allConnectedOn := func(what string, r *replica, ids []string) {
		t.Helper()
		proctest.Eventually(t, what, 30*time.Second, func() (bool, string) {
			for _, id := range ids {
				if !r.connected(id) {
					return false, id + " not connected on " + r.name
				}
				if s, _ := laravelSession(ctx, w, id); s.EstadoQR != laravel.StatusConnected {
					return false, fmt.Sprintf("Laravel: %+v", s)
				}
			}
			return true, ""
		})
	}

	// gw-2 joins through a proxy that can cut it from Redis: gw-1 hands its shards over.
	proxy := redistest.StartFreezingProxy(t, strings.TrimPrefix(w.redisURL, "redis://"))
	gw2 := w.start("gw-2", "redis://"+proxy.Addr())
	watch.add(gw2)
	allConnectedOn("gw-2 to run its sessions", gw2, runOn(ids, "gw-1", "gw-2", "gw-2"))
	allConnectedOn("gw-1 to keep its sessions", gw1, runOn(ids, "gw-1", "gw-2", "gw-1"))
	recordVersions("after gw-2 joined")
	for _, id := range runOn(ids, "gw-1", "gw-2", "gw-2") {
		if s, _ := laravelSession(ctx, w, id); cluster.EpochOf(s.StatusVersion) == 0 {
			t.Errorf("%s: version %d has no epoch", id, s.StatusVersion)
		}
	}
	if v := gw1.metric(t, "wagate_cluster_shard_handoffs_total"); v == "" || v == "0" {
		t.Errorf("gw-1 handed over %q shards", v)
	}
	// Any replica answers GET /cluster with the same table, and routes a send to the holder.
	var view struct {
		Me struct {
			Name       string `json:"name"`
			Ready      bool   `json:"ready"`
			ShardsHeld int    `json:"shards_held"`
		} `json:"me"`
		Shards  int `json:"shards"`
		Members []struct {
			Name       string `json:"name"`
			ShardsHeld int    `json:"shards_held"`
		} `json:"members"`
		Table []cluster.ShardState `json:"table"`
	}
	if code := gw2.c.call("GET", "/cluster", nil, &view); code != 200 || view.Me.Name != "gw-2" || !view.Me.Ready ||
		view.Shards != testShards || len(view.Members) != 2 || len(view.Table) != testShards ||
		view.Members[0].ShardsHeld+view.Members[1].ShardsHeld != testShards {
		t.Errorf("GET /cluster on gw-2: %d %+v", code, view)
	}
	onGW2 := runOn(ids, "gw-1", "gw-2", "gw-2")[0]
	var sent struct {
		MessageID string `json:"message_id"`
	}
	if code := gw1.c.call("POST", "/sessions/"+onGW2+"/messages", map[string]string{"to": "+15559990000", "text": "routed"}, &sent); code != 200 || sent.MessageID == "" {
		t.Errorf("send through gw-1 for %s, run by gw-2: %d %+v", onGW2, code, sent)
	}

	// gw-2 is cut from Redis: it fences itself at its renew deadline (1.2 s) and drops its
	// sessions, before its lease ends (2 s) and gw-1 takes them.
	cut := time.Now()
	proxy.Freeze()
	proctest.Eventually(t, "gw-2 to drop its sessions once fenced", 10*time.Second, func() (bool, string) {
		_, live := gw2.gw.Manager().Counts()
		return live == 0, fmt.Sprint(live, " live")
	})
	t.Logf("gw-2 dropped its sessions %v after the cut", time.Since(cut).Round(time.Millisecond))
	allConnectedOn("gw-1 to take gw-2's sessions", gw1, ids)
	t.Logf("gw-1 ran every session %v after the cut", time.Since(cut).Round(time.Millisecond))
	recordVersions("after gw-2 was cut")
	if v := gw2.metric(t, "wagate_cluster_member_fenced_total"); v != "1" {
		t.Errorf("gw-2 fenced %q times, want 1", v)
	}

	// gw-3 joins, then leaves with SIGTERM: gw-1 takes its shards at once.
	gw3 := w.start("gw-3", w.redisURL)
	watch.add(gw3)
	allConnectedOn("gw-3 to run its sessions", gw3, runOn(ids, "gw-1", "gw-3", "gw-3"))
	recordVersions("after gw-3 joined")
	left := time.Now()
	gw3.stop(t, true)
	if v := gw1.metric(t, "wagate_cluster_member_fenced_total"); v != "0" {
		t.Errorf("gw-1 counted %q fencings; it was never fenced", v)
	}
	allConnectedOn("gw-1 to take gw-3's sessions after its SIGTERM", gw1, ids)
	t.Logf("gw-1 ran every session %v after gw-3's SIGTERM", time.Since(left).Round(time.Millisecond))
	recordVersions("after gw-3 left")

	// gw-4 joins and is killed: gw-1 takes its shards once its lease ends.
	gw4 := w.start("gw-4", w.redisURL)
	watch.add(gw4)
	allConnectedOn("gw-4 to run its sessions", gw4, runOn(ids, "gw-1", "gw-4", "gw-4"))
	killed := time.Now()
	gw4.gw.Kill()
	allConnectedOn("gw-1 to take gw-4's sessions after its kill", gw1, ids)
	took := time.Since(killed)
	t.Logf("gw-1 ran every session %v after gw-4's kill", took.Round(time.Millisecond))
	if interval, _ := cluster.LeaseTimings(testLeaseTTL); took < testLeaseTTL-interval {
		// The lease was renewed at most a renew interval before the kill: the shards can be
		// claimed no earlier than lease TTL minus that.
		t.Errorf("gw-4's sessions were taken %v after its kill, before its lease could end", took)
	}
	recordVersions("after gw-4 was killed")
	if v := gw1.metric(t, "wagate_cluster_shard_claims_total"); v == "" || v == "0" {
		t.Errorf("gw-1 claimed %q shards", v)
	}

	watch.finish(t)
	for _, e := range w.wa.Events() {
		if e.Kind == fakewa.EventReplaced {
			t.Errorf("fakewa replaced a connection (two clients of one device): %+v", e)
		}
	}
}
