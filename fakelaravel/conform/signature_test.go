package conform

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"wagate/fakelaravel"
	"wagate/gateway/laravel"
)

// runWith runs the check against h with opts (URL, token, client and output filled in).
func runWith(t *testing.T, h http.Handler, opts Options) (Report, string) {
	t.Helper()
	ts := httptest.NewServer(h)
	defer ts.Close()
	var out bytes.Buffer
	opts.URL, opts.Token, opts.Client, opts.Out = ts.URL, token, ts.Client(), &out
	rep, err := Run(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return rep, out.String()
}

func TestFakelaravelConformsWhileV1IsAllowedAndOnceV2IsRequired(t *testing.T) {
	secret := []byte("shh")
	for _, requireV2 := range []bool{false, true} {
		srv, err := fakelaravel.New(t.Context(), fakelaravel.Config{
			Token: token, Secret: secret, RequireSignatureV2: requireV2, DBPath: t.TempDir() + "/db.sqlite",
			Capacity: fakelaravel.CapacityModel{Workers: 4, Backlog: 64, ProxyTimeout: 30 * time.Second},
		})
		if err != nil {
			t.Fatal(err)
		}
		rep, out := runWith(t, srv, Options{Secret: secret, RequireSignatureV2: requireV2})
		srv.Close()
		if !rep.Passed() {
			t.Fatalf("require v2 %v: fakelaravel failed:\n%s", requireV2, out)
		}
		for _, want := range []string{"signature v2: a replayed request", "signature v2: a request signed for another path", "signature v1: "} {
			if !strings.Contains(out, "PASS  "+want) {
				t.Fatalf("require v2 %v: check %q did not run:\n%s", requireV2, want, out)
			}
		}
	}
}

// A target that still verifies v1 only (it ignores the v2 headers) fails the v2 checks.
func TestRejectsATargetThatOnlyKnowsV1(t *testing.T) {
	secret := []byte("shh")
	srv := fake(t, secret)
	v1Only := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Del(laravel.HeaderSignatureV2)
		r.Header.Del(laravel.HeaderNonce)
		srv.ServeHTTP(w, r)
	})
	rep, out := run(t, v1Only, secret)
	failedContain(t, rep, out, "signature v2: a batch signed with v2 only is accepted", "signature v2: a replayed request")
}

// A target that verifies v2 but does not remember signatures accepts a replay.
func TestRejectsATargetWithoutReplayProtection(t *testing.T) {
	secret := []byte("shh")
	app := fake(t, nil)
	verifier := &laravel.SignatureVerifier{Secrets: [][]byte{secret}} // no Replay guard
	forgetful := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if r.Method == http.MethodPost {
			if _, err := verifier.Verify(laravel.Incoming(r, body), time.Now()); err != nil {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = w.Write([]byte(`{"message":"Invalid signature."}`))
				return
			}
		}
		app.ServeHTTP(w, r)
	})
	rep, out := run(t, forgetful, secret)
	failedContain(t, rep, out, "signature v2: a replayed request")
	if len(rep.Failed()) != 1 {
		t.Fatalf("only the replay check should fail, failed: %v\n%s", rep.Failed(), out)
	}
}

// A target that requires v2 fails the v1 check when the run expects the migration to be open,
// and one that still accepts v1 fails it when the run expects v2 to be required.
func TestTheV1CheckFollowsTheMigrationSetting(t *testing.T) {
	secret := []byte("shh")
	strict, err := fakelaravel.New(t.Context(), fakelaravel.Config{
		Token: token, Secret: secret, RequireSignatureV2: true, DBPath: t.TempDir() + "/db.sqlite",
		Capacity: fakelaravel.CapacityModel{Workers: 4, Backlog: 64, ProxyTimeout: 30 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer strict.Close()
	rep, out := runWith(t, strict, Options{Secret: secret})
	failedContain(t, rep, out, "signature v1: a v1-only request is still accepted")

	rep, out = runWith(t, fake(t, secret), Options{Secret: secret, RequireSignatureV2: true})
	failedContain(t, rep, out, "signature v1: a v1-only request is 401 once v2 is required")
}
