// Package laravelapp_test checks the reference Laravel app under laravel/ for real: it starts the
// app with laravel/scripts/up.sh (private php-fpm and nginx masters on a free loopback port, a
// temporary runtime directory), runs fakelaravel's conformance check and the gateway's own client
// against it, and stops it. Skipped when php-fpm is not installed, unless $CI is set (CI installs
// Debian's packages through up.sh).
package laravelapp_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"wagate/fakelaravel"
	"wagate/fakelaravel/conform"
	"wagate/gateway/laravel"
	"wagate/internal/laravelup"
)

// app is a running instance of the reference app.
type app struct {
	url    string
	token  string
	secret []byte
	db     string // the SQLite file (WAGATE_LARAVEL_DB of up.sh's env file)
	// The old token and secret of a rotation under way, accepted next to token and secret.
	previousToken  string
	previousSecret []byte
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}

// shared is the one app instance the tests of this package share (started on first use,
// stopped by TestMain).
var shared struct {
	once sync.Once
	app  app
	err  error
	stop func()
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.stop != nil {
		shared.stop()
	}
	os.Exit(code)
}

// startApp returns the shared app, starting it on first use with scripts/up.sh: a secret, a fresh
// runtime directory and a free port. It skips the test when php-fpm is absent and $CI is unset.
func startApp(t testing.TB) app {
	t.Helper()
	if matches, _ := filepath.Glob("/usr/sbin/php-fpm*"); len(matches) == 0 && os.Getenv("CI") == "" {
		t.Skip("php-fpm is not installed (make laravel-up installs it; CI always runs this test)")
	}
	shared.once.Do(func() { shared.app, shared.stop, shared.err = launch() })
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.app
}

// launch starts an instance of the app; extraEnv (KEY=value) is added to up.sh's environment.
func launch(extraEnv ...string) (app, func(), error) {
	dir, err := os.MkdirTemp("", "wagate-laravel-test-")
	if err != nil {
		return app{}, nil, err
	}
	// PHP-FPM and nginx workers run as www-data when the test runs as root.
	if err := os.Chmod(dir, 0o755); err != nil {
		return app{}, nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return app{}, nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	a := app{token: randomHex(16), secret: []byte(randomHex(16)), previousToken: randomHex(16), previousSecret: []byte(randomHex(16))}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // package install included
	defer cancel()
	var out bytes.Buffer
	inst, err := laravelup.Start(ctx, laravelup.Options{
		Scripts: "scripts", Dir: filepath.Join(dir, "rt"), Port: port, Workers: 2,
		Token: a.token, Secret: string(a.secret), PreviousToken: a.previousToken, PreviousSecret: string(a.previousSecret),
		BaseEnv: append(os.Environ(), extraEnv...), Output: &out,
	})
	if err != nil {
		_ = os.RemoveAll(dir)
		return app{}, nil, fmt.Errorf("%w\n%s", err, out.String())
	}
	a.url, a.db = inst.Env[laravelup.KeyURL], inst.Env[laravelup.KeyDB]
	stop := func() {
		if err := inst.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
		_ = os.RemoveAll(dir)
	}
	return a, stop, nil
}

func TestReferenceAppPassesTheConformanceCheck(t *testing.T) {
	a := startApp(t)
	var log bytes.Buffer
	rep, err := conform.Run(context.Background(), conform.Options{URL: a.url, Token: a.token, Secret: a.secret, Messages: true, Out: &log})
	if err != nil {
		t.Fatalf("conform: %v\n%s", err, log.String())
	}
	if !rep.Passed() {
		t.Fatalf("failed checks %v:\n%s", rep.Failed(), log.String())
	}
	if len(rep.Checks) < 20 {
		t.Fatalf("only %d checks ran with a secret:\n%s", len(rep.Checks), log.String())
	}
}

func TestGatewayClientTalksToTheReferenceApp(t *testing.T) {
	a := startApp(t)
	ctx := context.Background()
	c, err := laravel.NewClient(laravel.ClientConfig{BaseURL: a.url, Token: a.token, Secret: a.secret})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()

	// Items of one session in one batch count as if applied in order: v1 applied, v3 applied,
	// v2 stale; the other session's v1 applied.
	res, err := c.PostStatusBatch(ctx, "k-"+randomHex(8), laravel.StatusBatch{Statuses: []laravel.StatusItem{
		{SessionID: "s-a", EstadoQR: laravel.StatusPending, Version: 1, EventID: "e1", ChangedAt: now},
		{SessionID: "s-a", EstadoQR: laravel.StatusConnected, Version: 3, EventID: "e2", ChangedAt: now},
		{SessionID: "s-a", EstadoQR: laravel.StatusDisconnected, Version: 2, EventID: "e3", ChangedAt: now},
		{SessionID: "s-b", EstadoQR: laravel.StatusConnected, Version: 1, EventID: "e4", ChangedAt: now},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if want := (laravel.BatchResult{Success: true, Updated: 3, Stale: 1, Errors: []laravel.ItemError{}}); res.Updated != want.Updated || res.Stale != want.Stale || !res.Success || res.Failed != 0 {
		t.Fatalf("batch result %+v, want %+v", res, want)
	}
	info, err := c.GetSession(ctx, "s-a")
	if err != nil {
		t.Fatal(err)
	}
	if info.EstadoQR != laravel.StatusConnected || info.StatusVersion != 3 || !info.Active || !info.Enabled || info.UpdatedAt.IsZero() {
		t.Fatalf("session s-a = %+v, want connected at version 3, active", info)
	}

	// A QR batch keeps the newest code; the lookup shows it next to the status.
	if _, err := c.PostQRBatch(ctx, "k-"+randomHex(8), laravel.QRBatch{QRs: []laravel.QRItem{
		{SessionID: "s-a", QR: "2@new", Version: 5, EventID: "q1", GeneratedAt: now},
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PostQRBatch(ctx, "k-"+randomHex(8), laravel.QRBatch{QRs: []laravel.QRItem{
		{SessionID: "s-a", QR: "2@old", Version: 4, EventID: "q0", GeneratedAt: now},
	}}); err != nil {
		t.Fatal(err)
	}
	if info, err = c.GetSession(ctx, "s-a"); err != nil || info.QR != "2@new" || info.QRVersion != 5 {
		t.Fatalf("session s-a = %+v, %v; want QR 2@new at version 5", info, err)
	}

	// Legacy writes overwrite without versions; an unknown session is ErrNotFound.
	if err := c.PostStatus(ctx, laravel.StatusUpdate{SessionID: "s-b", EstadoQR: laravel.StatusLoggedOut}); err != nil {
		t.Fatal(err)
	}
	if info, err = c.GetSession(ctx, "s-b"); err != nil || info.EstadoQR != laravel.StatusLoggedOut || info.Active {
		t.Fatalf("session s-b = %+v, %v; want logged_out, inactive", info, err)
	}
	if _, err := c.GetSession(ctx, "nobody"); !errors.Is(err, laravel.ErrNotFound) {
		t.Fatalf("unknown session: %v, want ErrNotFound", err)
	}

	// The same batch sent 8 times at once under one key is applied once: every answer is either
	// the batch's result (first or replayed) or 409 while it is in flight.
	key := "k-" + randomHex(8)
	batch := laravel.StatusBatch{Statuses: []laravel.StatusItem{{SessionID: "s-c", EstadoQR: laravel.StatusConnected, Version: 7, EventID: "c1", ChangedAt: now}}}
	type answer struct {
		res laravel.BatchResult
		err error
	}
	answers := make(chan answer, 8)
	for range 8 {
		go func() {
			res, err := c.PostStatusBatch(ctx, key, batch)
			answers <- answer{res, err}
		}()
	}
	for range 8 {
		a := <-answers
		var se *laravel.StatusError
		switch {
		case a.err == nil:
			if a.res.Updated != 1 || a.res.Stale != 0 {
				t.Errorf("concurrent same key: result %+v, want the first application's (updated 1)", a.res)
			}
		case errors.As(a.err, &se) && se.Status == 409:
			// in flight; the gateway retries after Retry-After
		default:
			t.Errorf("concurrent same key: %v", a.err)
		}
	}
	if info, err = c.GetSession(ctx, "s-c"); err != nil || info.StatusVersion != 7 {
		t.Fatalf("session s-c = %+v, %v", info, err)
	}

	// A client with the wrong secret is refused (401) and not retried.
	bad, err := laravel.NewClient(laravel.ClientConfig{BaseURL: a.url, Token: a.token, Secret: []byte("wrong")})
	if err != nil {
		t.Fatal(err)
	}
	err = bad.PostStatus(ctx, laravel.StatusUpdate{SessionID: "s-b", EstadoQR: laravel.StatusConnected})
	var se *laravel.StatusError
	if !errors.As(err, &se) || se.Status != 401 || laravel.Retryable(err) {
		t.Fatalf("wrong secret: %v, want a non-retryable 401", err)
	}
}

// The simulator's laravel.real runs measure the app through fakelaravel's front: what the front
// counts and the state it reads from the app's database must be the app's own.
func TestFakelaravelFrontMeasuresTheReferenceApp(t *testing.T) {
	a := startApp(t)
	ctx := t.Context()
	front, err := fakelaravel.New(ctx, fakelaravel.Config{AdminToken: "front-admin",
		Upstream: &fakelaravel.Upstream{URL: a.url, DBPath: a.db, Workers: 2}})
	if err != nil {
		t.Fatal(err)
	}
	defer front.Close()
	ts := httptest.NewServer(front)
	defer ts.Close()
	c, err := laravel.NewClient(laravel.ClientConfig{BaseURL: ts.URL, Token: a.token, Secret: a.secret})
	if err != nil {
		t.Fatal(err)
	}
	id := "front-" + randomHex(6)
	at := time.Now().UTC().Truncate(time.Microsecond)
	res, err := c.PostStatusBatch(ctx, "k-"+randomHex(8), laravel.StatusBatch{Statuses: []laravel.StatusItem{
		{SessionID: id, EstadoQR: laravel.StatusPending, Version: 1, EventID: "f1", ChangedAt: at},
		{SessionID: id, EstadoQR: laravel.StatusConnected, Version: 2, EventID: "f2", ChangedAt: at},
	}})
	if err != nil || res.Updated != 2 {
		t.Fatalf("batch through the front: %+v, %v", res, err)
	}
	if _, err := c.GetSession(ctx, id); err != nil {
		t.Fatalf("lookup through the front: %v", err)
	}

	st, err := front.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var found *fakelaravel.SessionState
	for i := range st.Sessions {
		if st.Sessions[i].SessionID == id {
			found = &st.Sessions[i]
		}
	}
	if found == nil || found.EstadoQR != laravel.StatusConnected || found.StatusVersion != 2 || !found.Enabled {
		t.Fatalf("state read from the app's database: %+v", found)
	}
	if u, err := time.Parse(fakelaravel.TimeLayout, found.UpdatedAt); err != nil || time.Since(u) > time.Minute || time.Since(u) < -time.Minute {
		t.Fatalf("updated_at %q is not a recent time in fakelaravel.TimeLayout: %v", found.UpdatedAt, err)
	}
	stats := front.Stats()
	b, g := stats.Endpoints[fakelaravel.EndpointStatusBatch], stats.Endpoints[fakelaravel.EndpointSession]
	if b.Requests != 1 || b.Updated != 2 || b.StatusCodes["200"] != 1 || g.Requests != 1 || g.Response.Count != 1 {
		t.Fatalf("front's stats: batch %+v, lookup %+v", b, g)
	}
}

// A rotation: while the old token and secret are configured as previous ones, a gateway still
// sending them and one already sending the new ones are both accepted; anything else is not.
func TestRotationAcceptsTheNewAndThePreviousCredentials(t *testing.T) {
	a := startApp(t)
	ctx := t.Context()
	other := []byte(randomHex(16))
	for _, tc := range []struct {
		name   string
		token  string
		secret []byte
		ok     bool
	}{
		{"new token, new secret", a.token, a.secret, true},
		{"old token, old secret", a.previousToken, a.previousSecret, true},
		{"new token, old secret", a.token, a.previousSecret, true},
		{"old token, new secret", a.previousToken, a.secret, true},
		{"unknown token", randomHex(16), a.secret, false},
		{"unknown secret", a.token, other, false},
	} {
		c, err := laravel.NewClient(laravel.ClientConfig{BaseURL: a.url, Token: tc.token, Secret: tc.secret})
		if err != nil {
			t.Fatal(err)
		}
		err = c.PostStatus(ctx, laravel.StatusUpdate{SessionID: "rot-" + randomHex(4), EstadoQR: laravel.StatusPending})
		var se *laravel.StatusError
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case !tc.ok && (!errors.As(err, &se) || se.Status != 401):
			t.Errorf("%s: got %v, want 401", tc.name, err)
		}
	}
}
