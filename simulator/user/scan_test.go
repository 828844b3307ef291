package user

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"wagate/gateway/laravel"
	"wagate/simulator/executor"
	"wagate/simulator/fakewa"
	"wagate/simulator/metrics"
	"wagate/simulator/scenario"
	"wagate/simulator/truth"
)

// What a phone's failed scan says about the pairing it tried, from the errors fakewa's two faces
// really give (in-process calls, its control API over loopback HTTP): an answer, or a request
// that never reached fakewa, changed nothing (the user undoes the connected state it caused); no
// answer leaves the pairing to complete or not (the state is unacknowledged: either final state
// is right). In a starved run, the users' control requests timed out while fakewa went on, and
// the gateway showed connected 374 sessions whose users had undone the pairing.
func TestAScanWithoutAnAnswerLeavesThePairingsOutcomeUnknown(t *testing.T) {
	wa, err := fakewa.New(fakewa.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := wa.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = wa.Close() })
	control := httptest.NewServer(wa.ControlHandler())
	t.Cleanup(control.Close)
	silent := make(chan struct{})
	neverAnswers := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-silent }))
	t.Cleanup(func() { close(silent); neverAnswers.Close() })
	hangsUp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			conn.Close()
		}
	}))
	t.Cleanup(hangsUp.Close)
	const qr = "2@ref,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,AAAA"
	remote := func(base string) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			c := &fakewa.ControlClient{BaseURL: base, HTTP: &http.Client{Timeout: 200 * time.Millisecond}}
			_, err := c.Pair(ctx, qr, "15550001236")
			return err
		}
	}
	for _, tc := range []struct {
		name       string
		scan       func(ctx context.Context) error
		cancelled  bool
		unanswered bool
	}{
		{"fakewa in-process refuses a code it never showed", func(ctx context.Context) error {
			_, err := wa.Pair(ctx, qr, "15550001236")
			return err
		}, false, false},
		{"fakewa's control API refuses a code it never showed", remote(control.URL), false, false},
		{"fakewa's control API is not running (connection refused)", remote(closedPort(t)), false, false},
		{"the control request timed out", remote(neverAnswers.URL), false, true},
		{"the control request's connection broke", remote(hangsUp.URL), false, true},
		{"the scan's caller gave up (its context ended)", remote(neverAnswers.URL), true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			if tc.cancelled {
				time.AfterFunc(20*time.Millisecond, cancel)
			}
			defer cancel()
			err := tc.scan(ctx)
			if err == nil {
				t.Fatal("the scan succeeded")
			}
			if got := ScanUnanswered(err); got != tc.unanswered {
				t.Errorf("ScanUnanswered(%v) = %v, want %v", err, got, tc.unanswered)
			}
		})
	}
	if ScanUnanswered(nil) {
		t.Error("a scan that succeeded counted as unanswered")
	}
}

// scanningPhone is the WhatsApp side of a user whose one scan fails with scan's error; the user
// acts on nothing else before it gives up.
type scanningPhone struct {
	scan func(ctx context.Context) error
}

func (p scanningPhone) Pair(ctx context.Context, _, _ string) (string, error) { return "", p.scan(ctx) }
func (scanningPhone) WaitConnected(context.Context, string, time.Time) (time.Time, error) {
	return time.Time{}, errors.New("not paired")
}
func (scanningPhone) Drop(string) error    { return errors.New("not paired") }
func (scanningPhone) Replace(string) error { return errors.New("not paired") }
func (scanningPhone) Logout(string) error  { return errors.New("not paired") }
func (scanningPhone) Write(context.Context, string, string, string, string) (string, error) {
	return "", errors.New("not paired")
}

// oneCode is a Laravel page that shows one QR code for every session and never another.
type oneCode struct{ qr string }

func (l oneCode) QR(string) (string, <-chan struct{}) { return l.qr, nil }

// A user whose scan got no answer and who then gave up accepts the gateway showing the session
// connected (fakewa completed the pairing) or never paired; one whose scan fakewa refused
// requires it never paired. Before, both undid the pairing, and the first was a gateway mismatch.
func TestAUserWhoseScanGotNoAnswerAcceptsThePairingCompletedWithoutIt(t *testing.T) {
	silent := make(chan struct{})
	neverAnswers := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-silent }))
	t.Cleanup(func() { close(silent); neverAnswers.Close() })
	gateway := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{}`)) // the start, the QR and status polls: answered
	}))
	t.Cleanup(gateway.Close)
	const qr = "2@ref,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,AAAA"
	for _, tc := range []struct {
		name           string
		scan           func(ctx context.Context) error
		gatewayShows   laravel.Status
		wantMismatches int64
	}{
		{"no answer, the pairing completed", func(ctx context.Context) error {
			c := &fakewa.ControlClient{BaseURL: neverAnswers.URL, HTTP: &http.Client{Timeout: 100 * time.Millisecond}}
			_, err := c.Pair(ctx, qr, "15550001237")
			return err
		}, laravel.StatusConnected, 0},
		{"no answer, the pairing did not complete", func(ctx context.Context) error {
			c := &fakewa.ControlClient{BaseURL: neverAnswers.URL, HTTP: &http.Client{Timeout: 100 * time.Millisecond}}
			_, err := c.Pair(ctx, qr, "15550001237")
			return err
		}, laravel.StatusPending, 0},
		{"refused, yet the gateway shows it connected", func(context.Context) error { return fakewa.ErrUnknownRef }, laravel.StatusConnected, 1},
		{"refused, never paired", func(context.Context) error { return fakewa.ErrUnknownRef }, laravel.StatusPending, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := metrics.NewRegistry(nil)
			ledger := truth.NewLedger(reg, truth.QRTiming{}, nil)
			b := scenario.DefaultBehaviour()
			giveUp, success := scenario.Duration(time.Second), 1.0
			b.ScanDelay, b.GiveUpAfter, b.ScanSuccess = &scenario.Dist{}, &giveUp, &success
			sc := &Scenario{
				Env: &Env{API: NewAPI(gateway.URL, "tok", &http.Client{Timeout: 5 * time.Second}, reg), Ledger: ledger, Reg: reg,
					Phone: scanningPhone{scan: tc.scan}, Laravel: oneCode{qr: qr}},
				Name:      "scan",
				Behaviour: b,
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := sc.Iterate(ctx, executor.VU{ID: 1, Iteration: 1, Stopping: make(chan struct{})}); !errors.Is(err, ErrGaveUp) {
				t.Fatalf("Iterate = %v, want the user to give up after its one scan", err)
			}
			ledger.ObserveLaravel("scan-i0-1", truth.Observation{Status: tc.gatewayShows, StatusVersion: 2, At: time.Now()})
			got := ledger.Finish(map[string]truth.State{"scan-i0-1": {Status: tc.gatewayShows, Version: 2}}, time.Now())
			if got.GatewayMismatches != tc.wantMismatches || got.Lost != 0 {
				t.Errorf("mismatches %d, lost %d; want %d, 0 (%v)", got.GatewayMismatches, got.Lost, tc.wantMismatches, got.Mismatches)
			}
		})
	}
}
