package run

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"wagate/simulator/metrics"
	"wagate/simulator/scenario"
)

func TestAbortOnFailStopsTheUsersAfterTheDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, err := scenario.Parse("a.yaml", []byte(`
scenarios: {s: {executor: constant-vus, duration: 1m}}
thresholds:
  http_req_failed:
    - {threshold: 'rate<0.01', abortOnFail: true, delayAbortEval: 10s}
  lost_updates: ['count==0']
`), nil)
		if err != nil {
			t.Fatal(err)
		}
		r := &runner{f: f, reg: metrics.NewRegistry(nil), log: slog.New(slog.DiscardHandler), start: time.Now()}
		r.reg.Rate("http_req_failed", true, nil) // 100% failed from the start
		users, stop := context.WithCancel(context.Background())
		defer stop()
		var aborted atomic.Bool
		done := make(chan struct{})
		go func() { r.abortWatch(context.Background(), users, stop, &aborted); close(done) }()
		time.Sleep(9 * time.Second)
		synctest.Wait()
		if users.Err() != nil {
			t.Fatal("aborted before delayAbortEval")
		}
		<-done
		if took := time.Since(r.start); !aborted.Load() || users.Err() == nil || took > 12*time.Second {
			t.Errorf("aborted %v after %s", aborted.Load(), took)
		}
	})
}
