package app_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"wagate/internal/redistest"
)

// getOps answers a GET of url: its status and body.
func getOps(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// opsUntil polls cond every 250 ms (under the operational endpoints' rate limit of 10/s) until it
// holds, for at most 20 s.
func opsUntil(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		var ok bool
		if ok, last = cond(); ok {
			return
		}
	}
	t.Fatalf("timed out waiting for %s; last seen: %.2000s", what, last)
}

// readyAndMetric reads /readyz and wagate_redis_eviction_policy_unsafe's sample line.
func readyAndMetric(base string) (code int, ready, metric string) {
	code, ready, err := getOps(base + "/readyz")
	if err != nil {
		return 0, err.Error(), ""
	}
	_, body, err := getOps(base + "/metrics")
	if err != nil {
		return code, ready, err.Error()
	}
	for line := range strings.SplitSeq(body, "\n") {
		if strings.HasPrefix(line, "wagate_redis_eviction_policy_unsafe ") {
			return code, ready, line
		}
	}
	return code, ready, "no wagate_redis_eviction_policy_unsafe sample"
}

// Issue 19 #5: an operator's CONFIG SET maxmemory-policy allkeys-lru while a batch gateway ran
// went unnoticed (the policy was checked only at start). The running gateway now reports it
// within its 5 s check: /readyz fails its redis_eviction_policy check saying what to set, and
// wagate_redis_eviction_policy_unsafe is 1, until the policy is safe again.
func TestARunningGatewayReportsAnEvictingPolicySetAtRuntimeInReadyzAndMetrics(t *testing.T) {
	rds := redistest.Real(t)
	ctx := context.Background()
	w, _ := batchWorld(t, rds.URL())
	w.startGateway()
	defer w.stopGateway()
	base := w.gatewayURL()
	if code, ready, metric := readyAndMetric(base); code != http.StatusOK || metric != "wagate_redis_eviction_policy_unsafe 0" {
		t.Fatalf("at noeviction: /readyz %d %s; %s", code, ready, metric)
	}

	admin := rds.Client(t)
	if err := admin.ConfigSet(ctx, "maxmemory-policy", "allkeys-lru").Err(); err != nil {
		t.Fatal(err)
	}
	opsUntil(t, "/readyz to fail its redis_eviction_policy check and the gauge to be 1", func() (bool, string) {
		code, ready, metric := readyAndMetric(base)
		return code == http.StatusServiceUnavailable && strings.Contains(ready, `"redis_eviction_policy"`) &&
				strings.Contains(ready, "maxmemory-policy noeviction") && metric == "wagate_redis_eviction_policy_unsafe 1",
			fmt.Sprintf("/readyz %d %s; %s", code, ready, metric)
	})

	if err := admin.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err(); err != nil {
		t.Fatal(err)
	}
	opsUntil(t, "/readyz to be ready and the gauge 0 again", func() (bool, string) {
		code, ready, metric := readyAndMetric(base)
		return code == http.StatusOK && metric == "wagate_redis_eviction_policy_unsafe 0", fmt.Sprintf("/readyz %d %s; %s", code, ready, metric)
	})
}
