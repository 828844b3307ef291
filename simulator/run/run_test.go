package run

import (
	"context"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"wagate/fakelaravel"
	"wagate/gateway/config"
	"wagate/gateway/laravel"
	"wagate/simulator/metrics"
	"wagate/simulator/scenario"
	"wagate/simulator/threshold"
	"wagate/simulator/truth"
)

func TestParsePrometheusText(t *testing.T) {
	p := parseProm(strings.NewReader(`# HELP go_goroutines Number of goroutines.
# TYPE go_goroutines gauge
go_goroutines 57
wagate_outbox_length{stream="events"} 12
wagate_outbox_length{stream="dead"} 3
wagate_outbox_capacity 100000
wagate_events_total{kind="qr"} 10
wagate_events_total{kind="status"} 5
`))
	if p.goroutines() != 57 || p.outboxDepth() != 15 || p.eventsEmitted() != 15 {
		t.Errorf("goroutines %v outbox %v events %v", p.goroutines(), p.outboxDepth(), p.eventsEmitted())
	}
	if (promSample{}).outboxDepth() != -1 {
		t.Error("no outbox metric must read as -1")
	}
}

func TestReadProcOfThisProcess(t *testing.T) {
	a, err := readProc(os.Getpid())
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	deadline := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(deadline) { // burn a little CPU
	}
	b, _ := readProc(os.Getpid())
	if b.rssBytes <= 0 || b.cpu < a.cpu {
		t.Errorf("samples %+v then %+v", a, b)
	}
	if pct := cpuPercent(a, b); pct < 0 || pct > 100*float64(16) {
		t.Errorf("cpu %% = %v", pct)
	}
}

// The scenario's gateway block reaches the gateway as its own configuration: the file a run
// writes (gateway.yaml) and the environment it passes, read by the gateway's config.Load as
// bin/gateway reads them, give exactly the configuration the run meant; the file holds the
// scenario's settings and no secret or per-run value.
func TestScenarioGatewayBlockRoundTripsThroughGatewayYAML(t *testing.T) {
	f, err := scenario.Parse("s.yaml", []byte(`
scenarios: {s: {executor: constant-vus, duration: 1m}}
gateway: {mode: batch, batchSize: 100, batchInterval: 2s, logLevel: debug, cacheTtlQr: 20s, qrCodes: 3, redis: server}
`), []string{"gateway.priorityInterval=300ms"})
	if err != nil {
		t.Fatal(err)
	}
	run := scenario.GatewayRun{Addr: "127.0.0.1:4100", APIToken: "api-token-0123456789", LaravelURL: "http://127.0.0.1:4200",
		LaravelToken: "laravel-token-x", LaravelSecret: "hmac-secret-x", DataDir: t.TempDir(), RedisURL: "redis://127.0.0.1:4300",
		WADial: "127.0.0.1:4400", WARootPubKey: strings.Repeat("ab", 32)}
	want := f.Gateway.RunConfig(run)
	file := gatewayFile(f.Gateway.Config)
	for _, never := range []string{"api-token-0123456789", "laravel-token-x", "hmac-secret-x", "4100", "4200", "4300", "4400", run.DataDir} {
		if strings.Contains(string(file), never) {
			t.Errorf("gateway.yaml holds %q:\n%s", never, file)
		}
	}
	env := map[string]string{}
	for _, kv := range gatewayEnviron(want) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	loaded, err := config.Load(config.Options{Args: []string{"-config", "gateway.yaml"},
		Getenv:  func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Environ: func() []string { return gatewayEnviron(want) },
		ReadFile: func(p string) ([]byte, error) {
			if p != "gateway.yaml" {
				t.Fatalf("read %s", p)
			}
			return file, nil
		}})
	if err != nil {
		t.Fatalf("the gateway refuses its configuration: %v\n%s", err, file)
	}
	if loaded.Config != want {
		t.Errorf("the gateway read\n%+v\nthe run meant\n%+v", loaded.Config, want)
	}
	c := loaded.Config
	if c.Batch.Size != 100 || c.Batch.Interval != 2*time.Second || c.Batch.PriorityInterval != 300*time.Millisecond ||
		c.LogLevel != "debug" || c.Cache.QRTTL != 20*time.Second || c.QRCodes != 3 || c.Mode != config.ModeBatch || c.RedisEmbedded {
		t.Errorf("scenario settings lost: %+v", c)
	}
	settings, err := fileSettings(file)
	if err != nil || settings["batchSize"] != "100" || settings["priorityInterval"] != "300ms" || settings["apiToken"] != "" {
		t.Errorf("the report's settings from the file: %v (%v)", settings, err)
	}
}

func TestScenarioMapsToFakelaravelFlags(t *testing.T) {
	f, err := scenario.Parse("s.yaml", []byte(`
scenarios: {s: {executor: constant-vus, duration: 1m}}
laravel: {cores: 4, workers: 16, bootstrap: 6ms, jitter: 0, faults: {errorRate: 0.5, errorStatus: 503}}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	args := strings.Join(laravelArgs(f.Laravel, 7), " ")
	for _, want := range []string{"-cores=4", "-workers=16", "-bootstrap-cpu=6ms", "-jitter=0", "-error-rate=0.5", "-error-status=503", "-seed=7"} {
		if !strings.Contains(args, want) {
			t.Errorf("fakelaravel args %q lack %s", args, want)
		}
	}
	down, err := laravelFaults(&scenario.LaravelFaults{Down: true}, 5*time.Second)
	if err != nil || len(down.DownWindows) != 1 || down.DownWindows[0].DurationMS != 5000 {
		t.Errorf("down fault = %+v (%v)", down, err)
	}
}

// The vocabulary fakelaravel's flat fields lack maps to its timed windows, for the fault's
// duration; a redirect carries its Location and no flat error.
func TestLaravelFaultsMapTheNewVocabularyToWindows(t *testing.T) {
	got, err := laravelFaults(&scenario.LaravelFaults{ErrorRate: 1, ErrorStatus: 307, RedirectTo: "http://127.0.0.2:1/x",
		BadBodyRate: 0.5, UnaccountedRate: 0.25, RefuseSessions: []string{"users-i0-3"}}, 4*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got.ErrorRate != 0 || got.ErrorStatus != 0 {
		t.Errorf("a redirect also set the flat error: %+v", got)
	}
	kinds := map[fakelaravel.FaultKind]fakelaravel.FaultWindow{}
	for _, w := range got.Windows {
		kinds[w.Kind] = w
		if w.DurationMS != 4000 {
			t.Errorf("%s lasts %d ms, want the fault's 4000", w, w.DurationMS)
		}
	}
	if w := kinds[fakelaravel.FaultStatus]; w.Status != 307 || w.Location != "http://127.0.0.2:1/x" || w.Rate != 1 {
		t.Errorf("redirect window = %+v", w)
	}
	if w := kinds[fakelaravel.FaultGarbageBody]; w.Rate != 0.5 {
		t.Errorf("garbage body window = %+v", w)
	}
	if w := kinds[fakelaravel.FaultUnaccountedFailures]; w.Rate != 0.25 {
		t.Errorf("unaccounted window = %+v", w)
	}
	if w := kinds[fakelaravel.FaultRefuseItems]; !w.RefusesSession("users-i0-3") || w.RefusesSession("users-i0-4") {
		t.Errorf("refusal window = %+v", w)
	}
}

// The watcher reads a real fakelaravel (in-process, behind httptest) and feeds the ledger: a
// status posted to Laravel after the simulation caused it is measured as delivered.
func TestLaravelWatchFeedsTheLedger(t *testing.T) {
	ctx := context.Background()
	srv, err := fakelaravel.New(ctx, fakelaravel.Config{Token: "tok", DBPath: t.TempDir() + "/l.db"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	hs := httptest.NewServer(srv)
	defer hs.Close()
	client, err := laravel.NewClient(laravel.ClientConfig{BaseURL: hs.URL, Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	reg := metrics.NewRegistry(nil)
	ledger := truth.NewLedger(reg, truth.QRTiming{}, nil)
	w := newLaravelWatch(fakelaravel.NewAdminClient(hs.URL, "tok", hs.Client()), ledger)

	ledger.Started("s1", "15550001", time.Now(), nil)
	if err := client.PostStatus(ctx, laravel.StatusUpdate{SessionID: "s1", EstadoQR: laravel.StatusPending}); err != nil {
		t.Fatal(err)
	}
	if err := w.poll(ctx); err != nil {
		t.Fatal(err)
	}
	ledger.Caused("s1", laravel.StatusConnected, time.Now())
	if err := client.PostStatus(ctx, laravel.StatusUpdate{SessionID: "s1", EstadoQR: laravel.StatusConnected}); err != nil {
		t.Fatal(err)
	}
	if err := w.poll(ctx); err != nil {
		t.Fatal(err)
	}
	if got := w.Statuses()["s1"]; got != "connected" {
		t.Fatalf("watcher sees %q", got)
	}
	d, _ := reg.Summarize(threshold.Key{Metric: "event_delivery_delay", Tags: map[string]string{"priority": "high"}}, time.Minute)
	if d.Histogram == nil || d.Histogram.Count() != 1 {
		t.Fatalf("high delivery delay not measured: %+v", d.Values)
	}
	truth := ledger.Finish(nil, time.Now())
	if truth.Lost != 0 || truth.Stale != 0 || truth.Sessions != 1 {
		t.Errorf("truth = %+v", truth)
	}
}
