package processtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"

	"wagate/fakelaravel"
	"wagate/gateway/cluster"
	"wagate/gateway/internal/pgtest"
	"wagate/gateway/laravel"
	"wagate/internal/proctest"
	"wagate/internal/redistest"
	"wagate/simulator/fakewa"
)

func TestMain(m *testing.M) { proctest.Main(m) }

const (
	apiToken     = "cluster-process-test-api-token-0123"
	laravelToken = "cluster-process-test-laravel-token"
	// leaseTTL is the replicas' member lease: the production default, so the takeover bound
	// (15 s + 2 s per 1000 sessions) is measured as a deployment would see it.
	leaseTTL = cluster.DefaultLeaseTTL
	// shards is small so that a few dozen sessions spread over the replicas' shards.
	shards = 64
)

// sessionCount is how many sessions a test pairs: 60 by default (a few seconds of pairing on a
// loaded machine), WAGATE_CLUSTER_TEST_SESSIONS up to 300.
func sessionCount(t testing.TB) int {
	n := 60
	if v := os.Getenv("WAGATE_CLUSTER_TEST_SESSIONS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 3 || n > 300 {
			t.Fatalf("WAGATE_CLUSTER_TEST_SESSIONS=%q: want 3..300", v)
		}
	}
	return n
}

// world is everything the gateways share: Redis, Postgres, fakewa, fakelaravel.
type world struct {
	t        testing.TB
	ctx      context.Context
	dir      string
	bin      map[string]string
	redis    string
	dsn      string
	wa       proctest.Fakewa
	phones   *fakewa.ControlClient
	lAddr    string
	admin    *fakelaravel.AdminClient
	replicas map[string]*replica
	jids     map[string]types.JID // session id -> its device
	grace    string               // WAGATE_CLUSTER_RESTART_GRACE of every replica ("": the default)
}

// replica is one gateway process in cluster mode; a restart keeps its name (gateway id) and
// address.
type replica struct {
	name   string
	addr   string
	extra  []string // settings of this replica only (startWith), kept across restarts
	proc   *proctest.Proc
	starts int
}

func (r *replica) url() string { return "http://" + r.addr }

func newWorld(t testing.TB) *world {
	t.Helper()
	if testing.Short() {
		t.Skip("starts redis-server, PostgreSQL, fakewa, fakelaravel and several gateways")
	}
	w := &world{t: t, ctx: context.Background(), dir: t.TempDir(), replicas: map[string]*replica{}, jids: map[string]types.JID{}}
	w.bin = proctest.Binaries(t)
	w.redis = redistest.StartServer(t, redistest.Options{AppendOnly: true}).Addr
	w.dsn = pgtest.Start(t)
	w.wa = proctest.StartFakewa(t, w.dir, w.bin["simulator"], "-stream-error-close-delay", "1s", "-receipts", "none")
	w.phones = fakewa.NewControlClient(w.wa.Control)
	w.lAddr = proctest.FreeAddr(t)
	lp := proctest.Start(t, w.dir, "fakelaravel", w.bin["fakelaravel"],
		[]string{"-addr", w.lAddr, "-db", filepath.Join(w.dir, "laravel.db")}, []string{"FAKELARAVEL_TOKEN=" + laravelToken})
	lp.WaitHTTP(t, "http://"+w.lAddr+"/_fake/healthz")
	w.admin = fakelaravel.NewAdminClient("http://"+w.lAddr, laravelToken, nil)
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("WAGATE_TEST_LOG") != "" {
			for _, name := range slices.Sorted(maps.Keys(w.replicas)) {
				t.Logf("%s log (end):\n%s", name, proctest.Tail(filepath.Join(w.dir, name+".log")))
			}
		}
	})
	return w
}

// env is a replica's environment: cluster mode, batch delivery, the shared stores.
func (w *world) env(r *replica) []string {
	return []string{
		"WAGATE_ADDR=" + r.addr,
		"WAGATE_API_TOKEN=" + apiToken,
		"WAGATE_LARAVEL_URL=http://" + w.lAddr,
		"WAGATE_LARAVEL_TOKEN=" + laravelToken,
		"WAGATE_LARAVEL_TIMEOUT=2s",
		"WAGATE_MODE=batch",
		"WAGATE_REDIS_URL=redis://" + w.redis,
		"WAGATE_STORE_DSN=" + w.dsn,
		"WAGATE_CLUSTER=1",
		"WAGATE_GATEWAY_ID=" + r.name,
		"WAGATE_ADVERTISE_URL=" + r.url(),
		"WAGATE_CLUSTER_SHARDS=" + strconv.Itoa(shards),
		"WAGATE_CLUSTER_LEASE_TTL=" + leaseTTL.String(),
		"WAGATE_BATCH_INTERVAL=300ms",
		"WAGATE_PRIORITY_INTERVAL=200ms",
		"WAGATE_QR_FIRST_TIMEOUT=30s",
		"WAGATE_PAIR_LOGIN_TIMEOUT=5s",
		"WAGATE_SHUTDOWN_TIMEOUT=10s",
		"WAGATE_WA_DIAL=" + w.wa.Addr,
		"WAGATE_WA_ROOT_PUBKEY=" + w.wa.RootPublicKey,
		"WAGATE_WA_INSECURE_TEST=1",
		// A test may set a restart grace for its whole world (every replica).
		"WAGATE_CLUSTER_RESTART_GRACE=" + w.restartGrace(),
	}
}

// restartGrace is the replicas' WAGATE_CLUSTER_RESTART_GRACE: the gateway's default unless a test
// set w.grace.
func (w *world) restartGrace() string {
	if w.grace != "" {
		return w.grace
	}
	return cluster.DefaultRestartGrace.String()
}

// start starts (or restarts) the replica named name and waits until it serves; ready waits for
// /readyz too (joined, first claims made).
func (w *world) start(name string) *replica { return w.startWith(name) }

// startWith is start with settings of this replica only (KEY=value, after the world's: they
// override them), kept when it is started again.
func (w *world) startWith(name string, extra ...string) *replica {
	w.t.Helper()
	r := w.replicas[name]
	if r == nil {
		r = &replica{name: name, addr: proctest.FreeAddr(w.t), extra: extra}
		w.replicas[name] = r
	}
	r.starts++
	r.proc = proctest.Start(w.t, w.dir, name, w.bin["gateway"], nil, append(w.env(r), r.extra...))
	r.proc.WaitHTTP(w.t, r.url()+"/healthz")
	return r
}

// startReady starts the named replicas and waits until each is ready and, together, they hold
// every shard.
func (w *world) startReady(names ...string) {
	w.t.Helper()
	for _, n := range names {
		w.start(n)
	}
	w.waitBalanced(30 * time.Second)
}

// live are the replicas whose process runs.
func (w *world) live() []*replica {
	var out []*replica
	for _, name := range slices.Sorted(maps.Keys(w.replicas)) {
		r := w.replicas[name]
		select {
		case <-r.proc.Exited():
		default:
			out = append(out, r)
		}
	}
	return out
}

// call makes an API request to base; out is filled from a 2xx JSON answer.
func (w *world) call(base, method, path string, body, out any) (int, []byte) {
	w.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(w.ctx, method, base+path, rd)
	if err != nil {
		w.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+apiToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			w.t.Fatalf("%s %s: %s: %v", method, path, data, err)
		}
	}
	return resp.StatusCode, data
}

// clusterView is the part of GET /cluster these tests read.
type clusterView struct {
	Me struct {
		ID    string `json:"id"`
		Name  string `json:"name"`
		Ready bool   `json:"ready"`
	} `json:"me"`
	Shards  int `json:"shards"`
	Members []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"members"`
	Table []cluster.ShardState `json:"table"`
}

// view reads GET /cluster from r.
func (w *world) view(r *replica) (clusterView, error) {
	var v clusterView
	code, body := w.call(r.url(), "GET", "/cluster", nil, &v)
	if code != 200 {
		return v, fmt.Errorf("GET /cluster on %s: %d %s", r.name, code, body)
	}
	return v, nil
}

// holders maps every shard to the name of the replica holding it ("" for none), from any live
// replica's view.
func (w *world) holders() ([]string, []cluster.ShardState, error) {
	var err error
	for _, r := range w.live() {
		var v clusterView
		if v, err = w.view(r); err != nil {
			continue
		}
		out := make([]string, shards)
		for _, s := range v.Table {
			if s.Shard >= 0 && s.Shard < shards && s.Holder != "" {
				out[s.Shard] = cluster.NameOf(s.Holder)
			}
		}
		return out, v.Table, nil
	}
	return nil, nil, fmt.Errorf("no live replica answers GET /cluster: %v", err)
}

// holderOf is the name of the replica holding session id's shard.
func holderOf(holders []string, id string) string { return holders[cluster.Shard(id, shards)] }

// waitBalanced waits until every live replica is ready and every shard is held by the live
// replica rendezvous hashing assigns it to (cluster.AssignAll over the live names): the
// rebalancing has converged.
func (w *world) waitBalanced(timeout time.Duration) {
	w.t.Helper()
	proctest.Eventually(w.t, "every live replica ready and every shard held where it is assigned", timeout, func() (bool, string) {
		var names []string
		for _, r := range w.live() {
			v, err := w.view(r)
			if err != nil || !v.Me.Ready {
				return false, fmt.Sprintf("%s: ready %v, %v", r.name, v.Me.Ready, err)
			}
			names = append(names, r.name)
		}
		hs, _, err := w.holders()
		if err != nil {
			return false, err.Error()
		}
		want := cluster.AssignAll(shards, names)
		off := 0
		for k := range hs {
			if hs[k] != want[k] {
				off++
			}
		}
		return off == 0, fmt.Sprintf("%d of %d shards not yet where they are assigned among %v", off, shards, names)
	})
}

// laravelSessions is fakelaravel's state by session id.
func (w *world) laravelSessions() map[string]fakelaravel.SessionState {
	w.t.Helper()
	st, err := w.admin.GetState(w.ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[string]fakelaravel.SessionState{}
	for _, s := range st.Sessions {
		out[s.SessionID] = s
	}
	return out
}

// pair starts n sessions, each through a different replica than its holder where possible (the
// request is forwarded), pairs each with a fakewa phone and waits until Laravel shows all of them
// connected. Eight pairings run at once.
func (w *world) pair(n int) []string {
	w.t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("c%03d", i)
	}
	live := w.live()
	var mu sync.Mutex
	var failures []string
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			entry := live[i%len(live)]
			jid, err := w.pairOne(entry, id, fmt.Sprintf("1555777%04d", i))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failures = append(failures, fmt.Sprintf("%s via %s: %v", id, entry.name, err))
				return
			}
			w.jids[id] = jid
		}()
	}
	wg.Wait()
	if len(failures) > 0 {
		w.t.Fatalf("%d of %d pairings failed: %s", len(failures), n, strings.Join(failures[:min(5, len(failures))], "; "))
	}
	w.waitConnected(ids, 60*time.Second)
	return ids
}

// pairOne starts session id through entry, reads its QR code through entry and pairs it.
func (w *world) pairOne(entry *replica, id, phone string) (types.JID, error) {
	deadline := time.Now().Add(45 * time.Second)
	var qr struct {
		QR string `json:"qr"`
	}
	started := false
	for time.Now().Before(deadline) {
		if !started {
			code, body := w.call(entry.url(), "POST", "/sessions", map[string]string{"session_id": id}, nil)
			switch {
			case code == 200:
				started = true
			case code == 503: // the shard is moving: retry, as Retry-After says
			default:
				return types.JID{}, fmt.Errorf("start: %d %s", code, body)
			}
		}
		if started {
			if code, _ := w.call(entry.url(), "GET", "/sessions/"+id+"/qr", nil, &qr); code == 200 && qr.QR != "" {
				return w.phones.Pair(w.ctx, qr.QR, phone)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return types.JID{}, fmt.Errorf("no QR code within 45 s (started %v)", started)
}

// waitConnected waits until Laravel shows every one of ids connected.
func (w *world) waitConnected(ids []string, timeout time.Duration) {
	w.t.Helper()
	proctest.Eventually(w.t, fmt.Sprintf("%d sessions connected in Laravel", len(ids)), timeout, func() (bool, string) {
		ls := w.laravelSessions()
		var notYet []string
		for _, id := range ids {
			if ls[id].EstadoQR != laravel.StatusConnected {
				notYet = append(notYet, id+"="+string(ls[id].EstadoQR))
			}
		}
		return len(notYet) == 0, fmt.Sprintf("%d not connected: %v", len(notYet), notYet[:min(8, len(notYet))])
	})
}

// waEvents are fakewa's events after seq of the given kind, by device JID.
func (w *world) waEvents(since uint64, kind fakewa.EventKind) map[string][]fakewa.Event {
	w.t.Helper()
	evs, err := w.phones.Events(w.ctx, since)
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[string][]fakewa.Event{}
	for _, e := range evs {
		if e.Kind == kind {
			out[e.JID] = append(out[e.JID], e)
		}
	}
	return out
}

// lastSeq is the sequence number of fakewa's newest event.
func (w *world) lastSeq() uint64 {
	w.t.Helper()
	evs, err := w.phones.Events(w.ctx, 0)
	if err != nil {
		w.t.Fatal(err)
	}
	if len(evs) == 0 {
		return 0
	}
	return evs[len(evs)-1].Seq
}

// byHolder groups session ids by the replica holding their shard.
func byHolder(holders []string, ids []string) map[string][]string {
	out := map[string][]string{}
	for _, id := range ids {
		h := holderOf(holders, id)
		out[h] = append(out[h], id)
	}
	return out
}

// epochOf is the current epoch of session id's shard in table.
func epochOf(table []cluster.ShardState, id string) int64 {
	k := cluster.Shard(id, shards)
	for _, s := range table {
		if s.Shard == k {
			return s.Epoch
		}
	}
	return 0
}

// checkLaravelMatchesHolders checks that Laravel shows every session connected with a version of
// its shard's current epoch: the last write Laravel applied came from the current holder.
func (w *world) checkLaravelMatchesHolders(ids []string) {
	w.t.Helper()
	proctest.Eventually(w.t, "Laravel to show every session connected at its shard's current epoch", 30*time.Second, func() (bool, string) {
		_, table, err := w.holders()
		if err != nil {
			return false, err.Error()
		}
		ls := w.laravelSessions()
		for _, id := range ids {
			s := ls[id]
			if s.EstadoQR != laravel.StatusConnected || cluster.EpochOf(s.StatusVersion) != epochOf(table, id) {
				return false, fmt.Sprintf("%s: Laravel %s v%d (epoch %d), shard epoch %d", id, s.EstadoQR, s.StatusVersion, cluster.EpochOf(s.StatusVersion), epochOf(table, id))
			}
		}
		return true, ""
	})
}

// checkNoSecretsLogged checks every replica's log for the tokens.
func (w *world) checkNoSecretsLogged() {
	w.t.Helper()
	for name := range w.replicas {
		b, err := os.ReadFile(filepath.Join(w.dir, name+".log"))
		if err != nil {
			w.t.Fatal(err)
		}
		if bytes.Contains(b, []byte(apiToken)) || bytes.Contains(b, []byte(laravelToken)) {
			w.t.Errorf("a token appears in %s's log", name)
		}
	}
}

// checkReadsAgree checks that the status read (GET /sessions/{id}) answers the same status as
// Laravel holds on every live replica, whichever holds the session (reads are served where they
// arrive, from the shared cache); it returns how many reads carried an older version than
// Laravel's (a replica's cached copy from before the takeover).
func (w *world) checkReadsAgree(ids []string) (olderVersions int) {
	w.t.Helper()
	proctest.Eventually(w.t, "every replica to read every session's status as Laravel holds it", 20*time.Second, func() (bool, string) {
		ls := w.laravelSessions()
		olderVersions = 0
		for _, r := range w.live() {
			for _, id := range ids {
				var s struct {
					Status  laravel.Status `json:"status"`
					Version int64          `json:"version"`
				}
				if code, body := w.call(r.url(), "GET", "/sessions/"+id, nil, &s); code != 200 {
					return false, fmt.Sprintf("%s on %s: %d %s", id, r.name, code, body)
				}
				if s.Status != ls[id].EstadoQR {
					return false, fmt.Sprintf("%s on %s: %s v%d, Laravel %s v%d", id, r.name, s.Status, s.Version, ls[id].EstadoQR, ls[id].StatusVersion)
				}
				if s.Version < ls[id].StatusVersion {
					olderVersions++
				}
			}
		}
		return true, ""
	})
	return olderVersions
}
