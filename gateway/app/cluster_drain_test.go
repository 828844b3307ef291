package app_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"wagate/gateway/cluster"
	"wagate/gateway/config"
	"wagate/internal/proctest"
)

// drainAnswer is POST /cluster/drain's answer.
type drainAnswer struct {
	Drained            bool   `json:"drained"`
	Member             string `json:"member"`
	ShardsReleased     int    `json:"shards_released"`
	SessionsHandedOver int    `json:"sessions_handed_over"`
}

// clusterTable is the part of GET /cluster the drain tests read.
type clusterTable struct {
	Me struct {
		ID         string `json:"id"`
		Ready      bool   `json:"ready"`
		ShardsHeld int    `json:"shards_held"`
		Drained    bool   `json:"drained"`
	} `json:"me"`
	Members []struct {
		Name string `json:"name"`
	} `json:"members"`
	Table []cluster.ShardState `json:"table"`
}

// rawPost posts to base+path with the Authorization header auth ("" for none) and returns the
// status and the body.
func rawPost(t *testing.T, base, path, auth string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest("POST", base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// errorCode is the code of the API's error body {"error": {"code": ...}}.
func errorCode(t *testing.T, body []byte) string {
	t.Helper()
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("not an error body: %s", body)
	}
	return e.Error.Code
}

// POST /cluster/drain is authenticated as every other route: a request without the API token,
// with another token or another scheme is refused (401 unauthorized) and drains nothing.
func TestDrainIsRefusedWithoutTheAPIToken(t *testing.T) {
	w := newClusterWorld(t)
	a := w.start("gw-a", w.redisURL)
	for _, auth := range []string{
		"",
		"Bearer",
		"Bearer " + apiToken[:len(apiToken)-1],
		"Bearer " + apiToken + "x",
		"Basic " + apiToken,
		"bearer-" + apiToken,
	} {
		code, body := rawPost(t, a.c.base, "/cluster/drain", auth)
		if code != http.StatusUnauthorized || errorCode(t, body) != "unauthorized" {
			t.Errorf("Authorization %q: %d %s, want 401 unauthorized", auth, code, body)
		}
	}
	var v clusterTable
	if code := a.c.call("GET", "/cluster", nil, &v); code != 200 || v.Me.Drained || v.Me.ShardsHeld != testShards {
		t.Fatalf("after refused drains: %d, drained %v, %d of %d shards held", code, v.Me.Drained, v.Me.ShardsHeld, testShards)
	}
	if code := a.c.call("GET", "/readyz", nil, nil); code != 200 {
		t.Fatalf("after refused drains /readyz answers %d", code)
	}
}

// A gateway outside cluster mode has nobody to hand its sessions to: the drain is a clear 409
// conflict (not_in_cluster_mode) and the gateway goes on serving.
func TestDrainOutsideClusterModeIsAConflict(t *testing.T) {
	w := newWorld(t, worldOptions{})
	c := w.client()
	code, body := rawPost(t, c.base, "/cluster/drain", "Bearer "+apiToken)
	if code != http.StatusConflict || errorCode(t, body) != "not_in_cluster_mode" || !strings.Contains(string(body), "WAGATE_CLUSTER") {
		t.Fatalf("drain outside cluster mode: %d %s, want 409 not_in_cluster_mode naming WAGATE_CLUSTER", code, body)
	}
	if code := c.call("GET", "/readyz", nil, nil); code != 200 {
		t.Fatalf("after the refused drain /readyz answers %d", code)
	}
}

// A drain hands every shard over at once and leaves without the restart grace (gw-b runs with the
// default 30 s): gw-a holds every shard within a few rounds, nothing waits for gw-b, gw-b is
// no member, holds nothing and is not ready, and stays so until stopped. Asking again, also
// several times at once, answers the same drain; stopping the drained replica changes nothing.
func TestADrainHandsEveryShardOverAtOnceAndAskingAgainAnswersTheSameDrain(t *testing.T) {
	w := newClusterWorld(t)
	a := w.start("gw-a", w.redisURL)
	b := w.startWith("gw-b", w.redisURL, func(c *config.Config) { c.ClusterRestartGrace = cluster.DefaultRestartGrace })
	proctest.Eventually(t, "both replicas holding shards", 30*time.Second, func() (bool, string) {
		var va, vb clusterTable
		a.c.call("GET", "/cluster", nil, &va)
		b.c.call("GET", "/cluster", nil, &vb)
		return va.Me.ShardsHeld > 0 && vb.Me.ShardsHeld > 0 && va.Me.ShardsHeld+vb.Me.ShardsHeld == testShards,
			fmt.Sprintf("gw-a %d, gw-b %d", va.Me.ShardsHeld, vb.Me.ShardsHeld)
	})
	var before clusterTable
	b.c.call("GET", "/cluster", nil, &before)

	// Three at once: one drain, three identical answers.
	answers := make([]drainAnswer, 3)
	codes := make([]int, 3)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range answers {
		wg.Go(func() { codes[i] = b.c.call("POST", "/cluster/drain", nil, &answers[i]) })
	}
	wg.Wait()
	took := time.Since(start)
	for i := range answers {
		if codes[i] != 200 || answers[i] != answers[0] {
			t.Fatalf("concurrent drain %d: %d %+v, want 200 %+v", i, codes[i], answers[i], answers[0])
		}
	}
	want := drainAnswer{Drained: true, Member: before.Me.ID, ShardsReleased: before.Me.ShardsHeld}
	if answers[0] != want {
		t.Fatalf("drain answered %+v, want %+v", answers[0], want)
	}
	if took > 10*time.Second {
		t.Errorf("the drain took %v", took)
	}

	proctest.Eventually(t, "gw-a holding every shard, none waiting for gw-b", 5*time.Second, func() (bool, string) {
		var va clusterTable
		if code := a.c.call("GET", "/cluster", nil, &va); code != 200 {
			return false, fmt.Sprint(code)
		}
		for _, s := range va.Table {
			if s.Holder != va.Me.ID || s.WaitingFor != "" {
				return false, fmt.Sprintf("shard %d held by %q, waiting for %q", s.Shard, s.Holder, s.WaitingFor)
			}
		}
		return len(va.Members) == 1 && va.Members[0].Name == "gw-a", fmt.Sprintf("members %+v", va.Members)
	})
	t.Logf("drain answered after %v; gw-a held every shard %v after the drain began", took.Round(time.Millisecond), time.Since(start).Round(100*time.Millisecond))

	var again drainAnswer
	if code := b.c.call("POST", "/cluster/drain", nil, &again); code != 200 || again != answers[0] {
		t.Fatalf("drain asked again: %d %+v, want 200 %+v", code, again, answers[0])
	}
	var vb clusterTable
	if code := b.c.call("GET", "/cluster", nil, &vb); code != 200 || !vb.Me.Drained || vb.Me.ShardsHeld != 0 || vb.Me.Ready {
		t.Fatalf("gw-b after its drain: %d %+v, want drained, 0 shards, not ready", code, vb.Me)
	}
	if code := b.c.call("GET", "/readyz", nil, nil); code != http.StatusServiceUnavailable {
		t.Fatalf("gw-b's /readyz after its drain: %d, want 503", code)
	}
	// Two more rounds: the drained replica claims nothing back.
	time.Sleep(2 * time.Second)
	if code := b.c.call("GET", "/cluster", nil, &vb); code != 200 || vb.Me.ShardsHeld != 0 {
		t.Fatalf("gw-b 2 s after its drain: %d, %d shards held", code, vb.Me.ShardsHeld)
	}

	b.stop(t, true)
	var va clusterTable
	if code := a.c.call("GET", "/cluster", nil, &va); code != 200 || va.Me.ShardsHeld != testShards {
		t.Fatalf("gw-a after gw-b stopped: %d, %d of %d shards", code, va.Me.ShardsHeld, testShards)
	}
	for _, s := range va.Table {
		if s.WaitingFor != "" {
			t.Fatalf("shard %d waits for %s after the drained replica stopped", s.Shard, s.WaitingFor)
		}
	}
}
