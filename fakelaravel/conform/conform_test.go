package conform

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"wagate/fakelaravel"
	"wagate/gateway/laravel"
)

const token = "conform-token"

func fake(t *testing.T, secret []byte) *fakelaravel.Server {
	t.Helper()
	srv, err := fakelaravel.New(t.Context(), fakelaravel.Config{
		Token: token, Secret: secret, DBPath: t.TempDir() + "/db.sqlite",
		Capacity: fakelaravel.CapacityModel{Workers: 4, Backlog: 64, ProxyTimeout: 30 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

func run(t *testing.T, h http.Handler, secret []byte) (Report, string) {
	t.Helper()
	ts := httptest.NewServer(h)
	defer ts.Close()
	var out bytes.Buffer
	rep, err := Run(t.Context(), Options{URL: ts.URL, Token: token, Secret: secret, Client: ts.Client(), Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	return rep, out.String()
}

func TestFakelaravelConforms(t *testing.T) {
	rep, out := run(t, fake(t, nil), nil)
	if !rep.Passed() {
		t.Fatalf("fakelaravel failed:\n%s", out)
	}
	if len(rep.Checks) != 20 || !strings.Contains(out, "conform: 20 of 20 checks passed") {
		t.Fatalf("unexpected output:\n%s", out)
	}
}

func TestFakelaravelConformsWithSignatures(t *testing.T) {
	secret := []byte("shh")
	rep, out := run(t, fake(t, secret), secret)
	if !rep.Passed() || len(rep.Checks) != 26 {
		t.Fatalf("fakelaravel with a secret failed:\n%s", out)
	}
}

// A rerun against the same database passes too (fresh ids and versions each run).
func TestConformCanRunTwiceAgainstOneTarget(t *testing.T) {
	srv := fake(t, nil)
	run(t, srv, nil)
	if rep, out := run(t, srv, nil); !rep.Passed() {
		t.Fatalf("second run failed:\n%s", out)
	}
}

// rewriteBatch wraps h and rewrites each batch body's items before h sees it.
func rewriteBatch(h http.Handler, edit func(items []map[string]any)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == laravel.PathStatusBatch || r.URL.Path == laravel.PathQRBatch {
			body, _ := io.ReadAll(r.Body)
			var doc map[string][]map[string]any
			if json.Unmarshal(body, &doc) == nil {
				for _, items := range doc {
					edit(items)
				}
				body, _ = json.Marshal(doc)
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
		}
		h.ServeHTTP(w, r)
	})
}

func failedContain(t *testing.T, rep Report, out string, names ...string) {
	t.Helper()
	if rep.Passed() {
		t.Fatalf("broken target passed:\n%s", out)
	}
	for _, n := range names {
		if !slices.ContainsFunc(rep.Failed(), func(f string) bool { return strings.HasPrefix(f, n) }) {
			t.Errorf("check %q did not fail:\n%s", n, out)
		}
	}
	if !strings.Contains(out, "FAIL  ") {
		t.Errorf("no FAIL line:\n%s", out)
	}
}

func TestRejectsATargetThatAppliesStaleVersions(t *testing.T) {
	var counter atomic.Int64
	counter.Store(1 << 60)
	broken := rewriteBatch(fake(t, nil), func(items []map[string]any) {
		for _, it := range items {
			if _, ok := it["version"].(float64); ok {
				it["version"] = counter.Add(1) // every item looks newer than anything stored
			}
		}
	})
	rep, out := run(t, broken, nil)
	failedContain(t, rep, out, "batch: stale and equal versions", "batch: a QR batch applies only newer versions")
}

const accountingCheck = "batch: a 2xx accounts for every item"

// A target that counts a failed item without naming it in errors fails the accounting check (the
// gateway could not tell which item to send again).
func TestRejectsATargetThatCountsFailuresItDoesNotName(t *testing.T) {
	srv := fake(t, nil)
	if err := srv.SetFaults(fakelaravel.Faults{Windows: []fakelaravel.FaultWindow{{
		Kind: fakelaravel.FaultUnaccountedFailures, Rate: 1, Endpoints: []string{fakelaravel.EndpointStatusBatch},
	}}}); err != nil {
		t.Fatal(err)
	}
	rep, out := run(t, srv, nil)
	failedContain(t, rep, out, accountingCheck)
}

// A target that refuses items one by one, naming each in errors, accounts for them: the
// accounting check passes (other checks, which expect items applied, do not).
func TestATargetRefusingItemsByNameAccountsForThem(t *testing.T) {
	srv := fake(t, nil)
	if err := srv.SetFaults(fakelaravel.Faults{Windows: []fakelaravel.FaultWindow{{
		Kind: fakelaravel.FaultRefuseItems, Rate: 1, SessionFraction: 1, Endpoints: []string{fakelaravel.EndpointStatusBatch},
	}}}); err != nil {
		t.Fatal(err)
	}
	rep, out := run(t, srv, nil)
	if slices.ContainsFunc(rep.Failed(), func(f string) bool { return strings.HasPrefix(f, accountingCheck) }) {
		t.Fatalf("items refused by name failed the accounting check:\n%s", out)
	}
	if rep.Passed() {
		t.Fatalf("every status item refused, yet every check passed:\n%s", out)
	}
}

func TestRejectsATargetThatIgnoresIdempotencyKeys(t *testing.T) {
	var n atomic.Int64
	srv := fake(t, nil)
	broken := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(laravel.HeaderIdempotencyKey) != "" {
			r.Header.Set(laravel.HeaderIdempotencyKey, fmt.Sprintf("fresh-%d", n.Add(1)))
		}
		srv.ServeHTTP(w, r)
	})
	rep, out := run(t, broken, nil)
	failedContain(t, rep, out, "idempotency: a replayed key", "idempotency: a reused key")
}

func TestRejectsATargetWithoutAuthentication(t *testing.T) {
	srv := fake(t, nil)
	open := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Set("Authorization", "Bearer "+token)
		srv.ServeHTTP(w, r)
	})
	rep, out := run(t, open, nil)
	failedContain(t, rep, out, "auth: a request without a token", "auth: a wrong token")
}

func TestRejectsATargetThatIgnoresSignatures(t *testing.T) {
	unsigned := fake(t, nil) // configured without the secret the gateway signs with
	rep, out := run(t, unsigned, []byte("gateway-secret"))
	failedContain(t, rep, out, "signature: a POST without a signature", "signature: a wrong or stale signature")
}

func TestUnreachableTargetIsAnError(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	url := ts.URL
	ts.Close()
	if _, err := Run(t.Context(), Options{URL: url, Token: token}); err == nil {
		t.Fatal("no error for a closed port")
	}
}
