package app_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"wagate/fakelaravel"
	"wagate/gateway/app"
	"wagate/gateway/config"
	"wagate/gateway/laravel"
	"wagate/gateway/storage"
	"wagate/internal/proctest"
	"wagate/internal/redistest"
	"wagate/simulator/fakewa"
)

// Issue 19 #5: with maxmemory and allkeys-lru, Redis evicted the outbox like a cache key.
func TestBatchModeRefusesARedisThatCanEvictTheOutbox(t *testing.T) {
	b := redistest.Real(t)
	if err := b.Client(t).ConfigSet(context.Background(), "maxmemory-policy", "allkeys-lru").Err(); err != nil {
		t.Fatal(err)
	}
	cfg := baseConfig(t)
	cfg.Mode = config.ModeBatch
	cfg.RedisURL = b.URL()
	a, err := app.New(context.Background(), cfg, testLogger())
	if err == nil {
		_ = a.Shutdown(context.Background())
		t.Fatal("batch mode started on an allkeys-lru Redis")
	}
	if !strings.Contains(err.Error(), "maxmemory-policy noeviction") {
		t.Fatalf("error %q does not say what to set", err)
	}
}

// cleanStopMarked reads (and takes) the registry's clean-stop mark in dir.
func cleanStopMarked(t *testing.T, dir string) bool {
	t.Helper()
	ctx := context.Background()
	db, err := storage.Open(ctx, storage.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r := storage.NewRegistry(db, testLogger())
	defer r.Close(ctx)
	clean, err := r.TakeCleanStop(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return clean
}

// refusedRe finds a non-zero enqueue_failed in GET /metrics/batch.
var refusedRe = regexp.MustCompile(`"enqueue_failed":\s*[1-9]`)

// switchableLaravel answers 503 while down, else passes to the fake Laravel.
type switchableLaravel struct {
	down atomic.Bool
	next http.Handler
}

func (s *switchableLaravel) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.down.Load() && strings.HasPrefix(r.URL.Path, "/api/") {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	s.next.ServeHTTP(w, r)
}

// batchWorld starts fakewa and a switchable fake Laravel and configures (without starting) a
// batch-mode gateway on redisURL (empty: the embedded Redis).
func batchWorld(t *testing.T, redisURL string) (*inProcess, *switchableLaravel) {
	t.Helper()
	ctx := context.Background()
	wa, err := fakewa.New(fakewa.Config{RootKey: rootKey(), Logger: testLogger(), StreamErrorCloseDelay: time.Second, Receipts: fakewa.ReceiptsNone})
	if err != nil {
		t.Fatal(err)
	}
	if err := wa.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wa.Close() })
	fl, err := fakelaravel.New(ctx, fakelaravel.Config{Token: laravelToken, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fl.Close() })
	lv := &switchableLaravel{next: fl}
	lsrv := httptest.NewServer(lv)
	t.Cleanup(lsrv.Close)

	w := &inProcess{t: t, wa: wa, laravel: fl, lsrv: lsrv}
	w.cfg = config.Default()
	w.cfg.Addr = "127.0.0.1:0"
	w.cfg.Mode = config.ModeBatch
	w.cfg.RedisURL = redisURL
	w.cfg.RedisEmbedded = redisURL == ""
	w.cfg.Batch.Interval = 200 * time.Millisecond
	w.cfg.Batch.PriorityInterval = 200 * time.Millisecond
	w.cfg.APIToken = apiToken
	w.cfg.LaravelURL = lsrv.URL
	w.cfg.LaravelToken = laravelToken
	w.cfg.DataDir = t.TempDir()
	w.cfg.ShutdownTimeout = 15 * time.Second
	w.cfg.WAInsecureTest = true
	w.cfg.WADial = wa.Addr()
	w.cfg.WARootPubKey = fmt.Sprintf("%x", wa.RootPublicKey())
	return w, lv
}

// Issue 19 (faults-redis-lost-backlog): a status the outbox held when Redis lost its data was
// gone, and after a clean stop nothing sent it again: Laravel kept pending for a session the
// gateway knew was logged_out. Now the start sees that Redis holds other data than the gateway
// last saw (the marker's generation) and sends every session's status again.
func TestAStatusLostWithRedisDataReachesLaravelAfterTheRestart(t *testing.T) {
	rds := redistest.Real(t)
	ctx := context.Background()
	w, lv := batchWorld(t, rds.URL())
	w.startGateway()
	c := &client{t: t, base: w.gatewayURL(), hc: &http.Client{Timeout: 30 * time.Second}}

	const id = "lost_one"
	var view sessionView
	if code := c.call("POST", "/sessions", map[string]string{"session_id": id}, &view); code != 200 {
		t.Fatalf("start: %d", code)
	}
	waitLaravelStatus(t, ctx, w, id, laravel.StatusPending)

	// Laravel goes down; the logout's status waits in the outbox.
	lv.down.Store(true)
	if code := c.call("DELETE", "/sessions/"+id, nil, &view); code != 200 || view.Status != laravel.StatusLoggedOut {
		t.Fatalf("logout: %d %+v", code, view)
	}
	rdb := rds.Client(t)
	proctest.Eventually(t, "the logout in the outbox", 10*time.Second, func() (bool, string) {
		n, err := rdb.XLen(ctx, "wagate:outbox").Result()
		return err == nil && n > 0, fmt.Sprint(n, err)
	})
	w.stopGateway() // clean: the undelivered status stays in the outbox

	// Redis loses its data (restarted without persistence), then Laravel comes back.
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	lv.down.Store(false)
	w.startGateway()
	defer w.stopGateway()
	waitLaravelStatus(t, ctx, w, id, laravel.StatusLoggedOut)
}

// Issue 19 #4: an event the outbox refused (full past its deadline) was logged and dropped, and
// the stop was still marked clean, so the next start did not send the statuses again either.
func TestAStopAfterTheOutboxRefusedAnEventIsNotClean(t *testing.T) {
	w, lv := batchWorld(t, "")
	w.cfg.Batch.OutboxMax = 1

	// Control: nothing refused, the stop is clean.
	w.startGateway()
	w.stopGateway()
	if !cleanStopMarked(t, w.cfg.DataDir) {
		t.Fatal("a stop with nothing refused was not marked clean")
	}

	// Laravel down and room for one event: the session's pending status fills the outbox, its
	// first QR code is refused after the append deadline.
	lv.down.Store(true)
	w.startGateway()
	c := &client{t: t, base: w.gatewayURL(), hc: &http.Client{Timeout: 30 * time.Second}}
	var view sessionView
	if code := c.call("POST", "/sessions", map[string]string{"session_id": "refused_one"}, &view); code != 200 {
		t.Fatalf("start: %d", code)
	}
	proctest.Eventually(t, "the outbox to refuse an event", 30*time.Second, func() (bool, string) {
		resp, err := http.Get(w.gatewayURL() + "/metrics/batch")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		var body strings.Builder
		_, _ = io.Copy(&body, resp.Body)
		return refusedRe.MatchString(body.String()), body.String()
	})
	w.stopGateway()
	if cleanStopMarked(t, w.cfg.DataDir) {
		t.Fatal("the stop was marked clean although the outbox refused an event: the next start would not resend the statuses")
	}
}

// Redis losing its data while the gateway runs is noticed (the marker is gone) and every
// session's current state is sent again with a new version, without any change of state.
func TestARedisThatLosesItsDataWhileRunningGetsEverySessionsStateAgain(t *testing.T) {
	rds := redistest.Real(t)
	ctx := context.Background()
	w, _ := batchWorld(t, rds.URL())
	w.startGateway()
	defer w.stopGateway()
	c := &client{t: t, base: w.gatewayURL(), hc: &http.Client{Timeout: 30 * time.Second}}
	const id = "kept_one"
	var view sessionView
	if code := c.call("POST", "/sessions", map[string]string{"session_id": id}, &view); code != 200 {
		t.Fatalf("start: %d", code)
	}
	waitLaravelStatus(t, ctx, w, id, laravel.StatusPending)
	before, _ := laravelSession(ctx, w, id)
	if err := rds.Client(t).FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	proctest.Eventually(t, "Laravel to receive the session's status again", 30*time.Second, func() (bool, string) {
		s, _ := laravelSession(ctx, w, id)
		return s.EstadoQR == laravel.StatusPending && s.StatusVersion > before.StatusVersion && s.QR != "",
			fmt.Sprintf("before %+v, now %+v", before, s)
	})
}
