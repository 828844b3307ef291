package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types/events"

	"wagate/gateway/wadial"
	"wagate/internal/proctest"
	"wagate/simulator/fakewa"
	simrun "wagate/simulator/run"
)

// TestMain lets fakewa-load re-execute this test binary as its client process.
func TestMain(m *testing.M) {
	// The commands a run starts this binary with: fakewa-load's clients, the floor, fakewa
	// (whatsapp.process).
	if len(os.Args) > 1 && (os.Args[1] == loadClientsCommand || os.Args[1] == simrun.FloorServeCommand || os.Args[1] == "fakewa") {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	proctest.Main(m) // removes the binaries run_k6_test.go had built
}

// syncBuffer is a bytes.Buffer safe for a writer goroutine and a reading test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestVersionAndUsage(t *testing.T) {
	var out bytes.Buffer
	if code := run(context.Background(), []string{"-version"}, &out, io.Discard); code != 0 || !strings.HasPrefix(out.String(), "simulator ") {
		t.Fatalf("-version: exit %d, output %q", code, out.String())
	}
	var errOut bytes.Buffer
	if code := run(context.Background(), []string{"nope"}, io.Discard, &errOut); code != 2 || !strings.Contains(errOut.String(), "fakewa-load") {
		t.Fatalf("unknown command: exit %d, stderr %q", code, errOut.String())
	}
	if code := run(context.Background(), []string{"fakewa", "-listen", "0.0.0.0:0"}, io.Discard, io.Discard); code != 1 {
		t.Fatalf("non-loopback listen: exit %d, want 1", code)
	}
}

func TestStandaloneFakewaServesWhatsmeowAndItsControlAPIOverHTTP(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "root.pub")
	ctx, cancel := context.WithCancel(context.Background())
	stdout := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"fakewa", "-listen", "127.0.0.1:0", "-control", "127.0.0.1:0", "-root-key", keyFile}, stdout, io.Discard)
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("fakewa exited %d", code)
		}
	}()
	var ready fakewaReady
	deadline := time.Now().Add(10 * time.Second)
	for {
		line, _ := bufio.NewReader(strings.NewReader(stdout.String())).ReadString('\n')
		if line != "" && json.Unmarshal([]byte(line), &ready) == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ready line; stdout %q", stdout.String())
		}
		time.Sleep(10 * time.Millisecond)
	}

	// The key file the command wrote is what a gateway would be given.
	root, err := wadial.LoadRootKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if ready.RootPublicKey != strings.TrimSpace(readFile(t, keyFile)) {
		t.Fatalf("ready key %s differs from the key file", ready.RootPublicKey)
	}
	if _, err := os.Stat(keyFile + fakewa.PrivateKeySuffix); err != nil {
		t.Fatalf("private key file: %v", err)
	}

	container, err := sqlstore.New(context.Background(), "sqlite",
		"file:"+filepath.Join(t.TempDir(), "s.db")+"?_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer container.Close()
	cli := whatsmeow.NewClient(container.NewDevice(), nil)
	if err := (wadial.Config{Addr: ready.Addr, RootPubKey: root}).Apply(cli); err != nil {
		t.Fatal(err)
	}
	evs := make(chan any, 64)
	cli.AddEventHandler(func(e any) { evs <- e })
	if err := cli.Connect(); err != nil {
		t.Fatal(err)
	}
	defer cli.Disconnect()
	next := func(match func(any) bool) any {
		t.Helper()
		timeout := time.After(15 * time.Second)
		for {
			select {
			case e := <-evs:
				if match(e) {
					return e
				}
			case <-timeout:
				t.Fatal("timed out waiting for a client event")
			}
		}
	}
	qr := next(func(e any) bool { _, ok := e.(*events.QR); return ok }).(*events.QR)

	ctl := fakewa.NewControlClient(ready.Control)
	reqCtx, reqCancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer reqCancel()
	jid, err := ctl.Pair(reqCtx, qr.Codes[0], "5511955550000")
	if err != nil {
		t.Fatalf("POST /pair: %v", err)
	}
	next(func(e any) bool { _, ok := e.(*events.Connected); return ok })
	devices, err := ctl.Devices(reqCtx)
	if err != nil || len(devices) != 1 || devices[0].JID != jid.String() {
		t.Fatalf("GET /devices: %+v, %v", devices, err)
	}
	if err := ctl.Drop(reqCtx, jid); err != nil {
		t.Fatalf("POST drop: %v", err)
	}
	next(func(e any) bool { _, ok := e.(*events.Disconnected); return ok })
	next(func(e any) bool { _, ok := e.(*events.Connected); return ok })
	if err := ctl.Logout(reqCtx, jid); err != nil {
		t.Fatalf("POST logout: %v", err)
	}
	lo := next(func(e any) bool { _, ok := e.(*events.LoggedOut); return ok }).(*events.LoggedOut)
	if lo.OnConnect {
		t.Fatal("logout of a connected device arrived as OnConnect")
	}
	evList, err := ctl.Events(reqCtx, 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[fakewa.EventKind]bool{}
	for _, e := range evList {
		seen[e.Kind] = true
	}
	for _, k := range []fakewa.EventKind{fakewa.EventQRRefsIssued, fakewa.EventPaired, fakewa.EventConnected, fakewa.EventDropped, fakewa.EventLoggedOut} {
		if !seen[k] {
			t.Fatalf("GET /events lacks %s: %+v", k, evList)
		}
	}
}

func TestFakewaLoadPairsConnectsAndReconnectsClientsInAChildProcess(t *testing.T) {
	var out bytes.Buffer
	code := run(context.Background(), []string{"fakewa-load", "-clients", "4", "-concurrency", "2", "-json", "-timeout", "2m"}, &out, io.Discard)
	if code != 0 {
		t.Fatalf("fakewa-load exited %d: %s", code, out.String())
	}
	var res loadResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	if res.Clients != 4 || res.Connected != 4 || res.Failed != 0 || res.Reconnected != 4 {
		t.Fatalf("result %+v, want 4 clients connected and reconnected", res)
	}
	if res.PairSeconds <= 0 || res.ReconnectAllSeconds <= 0 || res.ServerRSSBytes == 0 || res.ClientRSSBytes == 0 ||
		res.ServerGoroutines == 0 || res.ClientGoroutines == 0 {
		t.Fatalf("result %+v has empty figures", res)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
