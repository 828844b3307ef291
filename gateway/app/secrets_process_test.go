package app_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"wagate/gateway/laravel"
	"wagate/internal/proctest"
)

// The three secrets of a run, each distinctive enough to grep for.
const (
	secretAPIToken     = "api-SECRET-7f3a9c1e5b2d4068"
	secretLaravelToken = "laravel-SECRET-b81d2e4f6a0c3957"
	secretHMAC         = "hmac-SECRET-4c6e8a0b2d1f3579"
)

// echoLaravel is a Laravel that answers every request with an error echoing what it received
// (headers and body), the worst case for secrets ending up in the gateway's errors and logs. It
// records what it saw.
type echoLaravel struct {
	mu       sync.Mutex
	auth     []string
	signed   int
	requests int
}

func (e *echoLaravel) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	e.mu.Lock()
	e.requests++
	e.auth = append(e.auth, r.Header.Get("Authorization"))
	if r.Header.Get(laravel.HeaderSignature) != "" {
		e.signed++
	}
	e.mu.Unlock()
	var echo bytes.Buffer
	_ = r.Header.Write(&echo)
	w.Header().Set("Content-Type", "application/json")
	code := http.StatusServiceUnavailable
	if strings.Contains(r.URL.Path, "/sessions/") {
		code = http.StatusInternalServerError
	}
	w.Header().Set("Retry-After", "1")
	w.WriteHeader(code)
	fmt.Fprintf(w, `{"message":%q}`, "debug: "+echo.String()+string(body)+" secret="+secretHMAC)
}

// Secrets (API token, Laravel token, HMAC secret) never appear in anything a gateway process
// writes or answers: its logs from start to shutdown, /healthz, /readyz, /metrics, the batch and
// cache metrics, every API answer (errors included), -help, and a refused start-up; even when
// Laravel echoes them back in its error bodies. The secrets are in use meanwhile (Laravel saw the
// token and signatures), so the absence means something.
func TestSecretsNeverLeaveTheGatewayProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the gateway binary")
	}
	bin := proctest.Binaries(t)["gateway"]
	for _, mode := range []string{"legacy", "batch"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			echo := &echoLaravel{}
			srv := httptest.NewServer(echo)
			defer srv.Close()
			var outputs bytes.Buffer
			note := func(what string, b []byte) { fmt.Fprintf(&outputs, "\n=== %s\n%s", what, b) }

			// Secrets come from files (WAGATE_*_FILE), as production should pass them.
			writeSecret := func(name, value string) string {
				p := filepath.Join(dir, name)
				if err := os.WriteFile(p, []byte(value+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				return p
			}
			addr := proctest.FreeAddr(t)
			env := []string{
				"WAGATE_ADDR=" + addr,
				"WAGATE_API_TOKEN_FILE=" + writeSecret("api-token", secretAPIToken),
				"WAGATE_LARAVEL_TOKEN_FILE=" + writeSecret("laravel-token", secretLaravelToken),
				"WAGATE_LARAVEL_SECRET_FILE=" + writeSecret("laravel-secret", secretHMAC),
				"WAGATE_LARAVEL_URL=" + srv.URL,
				"WAGATE_LARAVEL_TIMEOUT=2s",
				"WAGATE_DATA_DIR=" + filepath.Join(dir, "data"),
				"WAGATE_MODE=" + mode,
				"WAGATE_BATCH_INTERVAL=200ms",
				"WAGATE_PRIORITY_INTERVAL=200ms",
				"WAGATE_SHUTDOWN_TIMEOUT=5s",
				"WAGATE_LOG_LEVEL=debug",
				// WhatsApp: a closed port under the test-only settings, so sessions fail to connect
				// and take their error paths too.
				"WAGATE_WA_DIAL=" + proctest.FreeAddr(t),
				"WAGATE_WA_ROOT_PUBKEY=" + strings.Repeat("5a", 32),
				"WAGATE_WA_INSECURE_TEST=1",
			}
			if mode == "batch" {
				env = append(env, "WAGATE_REDIS_EMBEDDED=1")
			}
			gw := proctest.Start(t, dir, "gateway", bin, nil, env)
			base := "http://" + addr
			gw.WaitHTTP(t, base+"/healthz")

			hc := &http.Client{Timeout: 10 * time.Second}
			call := func(method, path, auth, body string) {
				req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
				if auth != "" {
					req.Header.Set("Authorization", auth)
				}
				resp, err := hc.Do(req)
				if err != nil {
					t.Errorf("%s %s: %v", method, path, err)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var hdr bytes.Buffer
				_ = resp.Header.Write(&hdr)
				note(fmt.Sprintf("%s %s -> %d", method, path, resp.StatusCode), append(hdr.Bytes(), b...))
			}
			good := "Bearer " + secretAPIToken
			for _, id := range []string{"s1", "s2"} {
				call("POST", "/sessions", good, `{"session_id":"`+id+`"}`)
			}
			time.Sleep(1500 * time.Millisecond) // events reach the echoing Laravel, which refuses them
			for _, rq := range [][4]string{
				{"GET", "/healthz", "", ""},
				{"GET", "/readyz", "", ""},
				{"GET", "/metrics", "", ""},
				{"GET", "/metrics/batch", good, ""},
				{"GET", "/metrics/cache", good, ""},
				{"GET", "/sessions", good, ""},
				{"GET", "/sessions/s1", good, ""},
				{"GET", "/sessions/s1/qr", good, ""},
				{"GET", "/sessions/s1/qr?format=png", good, ""},
				{"POST", "/sessions/s1/messages", good, `{"to":"15550001111","text":"hi"}`},
				{"POST", "/sessions", good, `{"session_id":`},
				{"POST", "/sessions", good, strings.Repeat("x", 100<<10)},
				{"GET", "/sessions", "Bearer " + secretAPIToken[:len(secretAPIToken)-1], ""},
				{"GET", "/sessions", "Bearer " + secretLaravelToken, ""},
				{"GET", "/sessions/s1", "Basic " + secretAPIToken, ""},
				{"GET", "/nope", good, ""},
				{"DELETE", "/sessions/s2", good, ""},
			} {
				call(rq[0], rq[1], rq[2], rq[3])
			}
			gw.Stop(t, 20*time.Second)
			logData, _ := os.ReadFile(gw.Log)
			note("gateway log", logData)

			// -help and a refused start (bad mode) with the secrets in the environment.
			help, _ := exec.Command(bin, "-help").CombinedOutput()
			note("-help", help)
			bad := exec.Command(bin)
			bad.Env = append(append([]string{}, env...), "WAGATE_MODE=fast", "WAGATE_LARAVEL_TOKEN="+secretLaravelToken, "WAGATE_API_TOKEN="+secretAPIToken)
			refused, _ := bad.CombinedOutput()
			note("refused start", refused)
			if !strings.Contains(string(refused), "WAGATE_MODE") {
				t.Errorf("the refused start does not name the setting: %s", refused)
			}

			for name, secret := range map[string]string{"API token": secretAPIToken, "Laravel token": secretLaravelToken, "HMAC secret": secretHMAC} {
				if i := strings.Index(outputs.String(), secret); i >= 0 {
					s := outputs.String()
					t.Errorf("the %s appears in the gateway's outputs: ...%s...", name, s[max(0, i-300):min(len(s), i+100)])
				}
			}
			echo.mu.Lock()
			defer echo.mu.Unlock()
			if echo.requests == 0 || echo.signed == 0 {
				t.Fatalf("Laravel saw %d requests, %d signed: the secrets were never used", echo.requests, echo.signed)
			}
			for _, a := range echo.auth {
				if a != "Bearer "+secretLaravelToken {
					t.Fatalf("Laravel saw Authorization %q", a)
				}
			}
			// Laravel's echoed error bodies did reach the log (redacted), so the check above read them.
			if !strings.Contains(outputs.String(), "[REDACTED]") {
				t.Errorf("no redacted echo of Laravel's error body in the outputs; the echo path was not exercised")
			}
			if !strings.Contains(string(logData), "INSECURE TEST SETTING") {
				t.Error("the log lacks the loud warning about the test-only WhatsApp settings")
			}
		})
	}
}
