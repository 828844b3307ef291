package fakewa

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	_ "modernc.org/sqlite"

	"wagate/gateway/wadial"
)

// testRootKey is the one root key of every server in this test binary: whatsmeow trusts a single
// process-global key (WACertPubKey), set once in TestMain.
var testRootKey = GenerateRootKey()

func TestMain(m *testing.M) {
	if err := wadial.SetRootKey(testRootKey.Pub[:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Short keepalives so the keepalive-silence flow takes seconds (package variables, set before
	// any client starts).
	whatsmeow.KeepAliveIntervalMin = 300 * time.Millisecond
	whatsmeow.KeepAliveIntervalMax = 400 * time.Millisecond
	whatsmeow.KeepAliveResponseDeadline = 300 * time.Millisecond
	if v := os.Getenv(silenceChildEnv); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			fmt.Fprintln(os.Stderr, silenceChildEnv, err)
			os.Exit(1)
		}
		whatsmeow.KeepAliveMaxFailTime = d // the silence tests' own process (silence_test.go)
	}
	os.Exit(m.Run())
}

// startServer starts a server with the shared root key; it is closed at the end of the test.
func startServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	cfg.RootKey = testRootKey
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// testClient is a real whatsmeow client with a temporary SQLite store, recording its events.
type testClient struct {
	t         *testing.T
	cli       *whatsmeow.Client
	container *sqlstore.Container

	mu     sync.Mutex
	events []any
	notify chan struct{}
	cursor int
}

func newTestClient(t *testing.T, addr string) *testClient {
	t.Helper()
	ctx := context.Background()
	dsn := "file:" + filepath.Join(t.TempDir(), "store.db") +
		"?_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)"
	container, err := sqlstore.New(ctx, "sqlite", dsn, nil)
	if err != nil {
		t.Fatalf("sqlstore: %v", err)
	}
	t.Cleanup(func() { container.Close() })
	return newTestClientWith(t, addr, container, container.NewDevice())
}

func newTestClientWith(t *testing.T, addr string, container *sqlstore.Container, dev *store.Device) *testClient {
	t.Helper()
	cli := whatsmeow.NewClient(dev, nil)
	if err := (wadial.Config{Addr: addr, RootPubKey: testRootKey.Pub[:]}).Apply(cli); err != nil {
		t.Fatal(err)
	}
	tc := &testClient{t: t, cli: cli, container: container, notify: make(chan struct{})}
	cli.AddEventHandler(tc.record)
	t.Cleanup(cli.Disconnect)
	return tc
}

// twin opens a second client on the same stored device, as a second gateway replica would.
func (tc *testClient) twin(addr string, jid types.JID) *testClient {
	tc.t.Helper()
	dev, err := tc.container.GetDevice(context.Background(), jid)
	if err != nil || dev == nil {
		tc.t.Fatalf("load device %s: %v", jid, err)
	}
	return newTestClientWith(tc.t, addr, tc.container, dev)
}

func (tc *testClient) record(evt any) {
	tc.mu.Lock()
	tc.events = append(tc.events, evt)
	close(tc.notify)
	tc.notify = make(chan struct{})
	tc.mu.Unlock()
}

// next waits for the next recorded event for which match returns true, skipping others.
func (tc *testClient) next(match func(any) bool, what string) any {
	tc.t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		tc.mu.Lock()
		for tc.cursor < len(tc.events) {
			e := tc.events[tc.cursor]
			tc.cursor++
			if match(e) {
				tc.mu.Unlock()
				return e
			}
		}
		notify := tc.notify
		tc.mu.Unlock()
		select {
		case <-notify:
		case <-deadline:
			tc.t.Fatalf("timed out waiting for %s; events so far: %s", what, tc.describe())
		}
	}
}

func (tc *testClient) describe() string {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	out := ""
	for _, e := range tc.events {
		out += fmt.Sprintf("%T ", e)
	}
	return out
}

// saw reports whether any event so far satisfies match.
func (tc *testClient) saw(match func(any) bool) bool {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	for _, e := range tc.events {
		if match(e) {
			return true
		}
	}
	return false
}

func is[T any](e any) bool { _, ok := e.(T); return ok }

func waitFor[T any](tc *testClient) T {
	tc.t.Helper()
	var zero T
	return tc.next(is[T], fmt.Sprintf("%T", zero)).(T)
}

// pairedClient connects a new client, scans its first QR code as phone and waits until it is
// connected as the new device.
func pairedClient(t *testing.T, srv *Server, phone string) (*testClient, types.JID) {
	t.Helper()
	return pairedClientWith(t, srv, phone, true)
}

// pairedClientWith is pairedClient with whatsmeow's auto-reconnect on or off, set before the
// client connects (whatsmeow reads it from its own goroutines: setting it later is a data race).
func pairedClientWith(t *testing.T, srv *Server, phone string, autoReconnect bool) (*testClient, types.JID) {
	t.Helper()
	tc := newTestClient(t, srv.Addr())
	tc.cli.EnableAutoReconnect = autoReconnect
	if err := tc.cli.Connect(); err != nil {
		t.Fatalf("connect: %v", err)
	}
	qr := waitFor[*events.QR](tc)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	jid, err := srv.Pair(ctx, qr.Codes[0], phone)
	if err != nil {
		t.Fatalf("pair: %v", err)
	}
	ps := waitFor[*events.PairSuccess](tc)
	if ps.ID != jid {
		t.Fatalf("PairSuccess.ID = %s, server paired %s", ps.ID, jid)
	}
	waitFor[*events.Connected](tc)
	return tc, jid
}

// waitServerEvent waits for a server event of kind for jid.
func waitServerEvent(t *testing.T, srv *Server, kind EventKind, jid types.JID) Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	e, err := srv.WaitEvent(ctx, func(e Event) bool { return e.Kind == kind && e.JID == jid.String() })
	if err != nil {
		t.Fatalf("server event %s for %s: %v", kind, jid, err)
	}
	return e
}
