package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types/events"
	_ "modernc.org/sqlite" // the "sqlite" driver of the clients' stores

	"wagate/gateway/wadial"
	"wagate/simulator/fakewa"
)

// loadClientsCommand is the hidden command fakewa-load re-executes this binary with.
const loadClientsCommand = "fakewa-load-clients"

// clientsPerStore is how many devices share one SQLite file (SQLite has one writer per file).
const clientsPerStore = 250

// loadClient is one whatsmeow client of the load and what it has seen.
type loadClient struct {
	cli       *whatsmeow.Client
	qr        chan string
	connected chan struct{}
	once      sync.Once
	// reconnected is set by the first Connected after the server restart.
	reconnected atomic.Bool
	trail       clientTrail
}

// runLoadClients is the client side of fakewa-load: N whatsmeow clients, each paired through the
// control API and connected, then all reconnected after a server restart. It prints one JSON
// loadResult (without the server description) on stdout.
func runLoadClients(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(loadClientsCommand, flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "", "fakewa WebSocket address")
	control := fs.String("control", "", "fakewa control API address")
	rootHex := fs.String("root-key-hex", "", "root public key in hex")
	n := fs.Int("clients", 10, "clients")
	concurrency := fs.Int("concurrency", 10, "pairings in flight")
	storeDir := fs.String("store-dir", "", "directory for SQLite stores")
	timeout := fs.Duration("timeout", 20*time.Minute, "bound on the run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	raiseFileLimit()
	root, err := wadial.ParseRootKeyHex(*rootHex)
	if err != nil {
		return err
	}
	dial := wadial.Config{Addr: *addr, RootPubKey: root}
	if err := wadial.SetRootKey(root); err != nil {
		return err
	}
	ctl := fakewa.NewControlClient(*control)

	stores := make([]*sqlstore.Container, (*n+clientsPerStore-1)/clientsPerStore)
	for i := range stores {
		dsn := "file:" + filepath.Join(*storeDir, fmt.Sprintf("store-%03d.db", i)) +
			"?_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)"
		if stores[i], err = sqlstore.New(ctx, "sqlite", dsn, nil); err != nil {
			return fmt.Errorf("store %d: %w", i, err)
		}
		defer stores[i].Close()
	}

	res := loadResult{Clients: *n, Concurrency: *concurrency}
	var errMu sync.Mutex
	addErr := func(err error) {
		errMu.Lock()
		if len(res.Errors) < 20 {
			res.Errors = append(res.Errors, err.Error())
		}
		errMu.Unlock()
	}
	var (
		latMu     sync.Mutex
		latencies []float64 // seconds from the restart to each client's Connected
		restartAt time.Time // written before reconnecting is set
	)
	var reconnecting atomic.Bool
	var reconnected atomic.Int64
	reconnectedAll := make(chan struct{})
	var connectedCount atomic.Int64

	progressDone := make(chan struct{})
	defer close(progressDone)
	go func() {
		tick := time.NewTicker(10 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				fmt.Fprintf(stderr, "fakewa-load: %d/%d connected, %d reconnected\n", connectedCount.Load(), *n, reconnected.Load())
			case <-progressDone:
				return
			}
		}
	}()

	clients := make([]*loadClient, *n)
	sem := make(chan struct{}, *concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range clients {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			addErr(fmt.Errorf("stopped before client %d: %w", i, ctx.Err()))
			break
		}
		lc := &loadClient{qr: make(chan string, 1), connected: make(chan struct{})}
		clients[i] = lc
		lc.cli = whatsmeow.NewClient(stores[i/clientsPerStore].NewDevice(), trailLogger{trail: &lc.trail, module: "client"})
		if err := dial.Apply(lc.cli); err != nil {
			return err
		}
		lc.cli.AddEventHandler(func(evt any) {
			lc.trail.event(evt)
			switch e := evt.(type) {
			case *events.QR:
				if len(e.Codes) > 0 {
					select {
					case lc.qr <- e.Codes[0]:
					default:
					}
				}
			case *events.Connected:
				lc.once.Do(func() { close(lc.connected) })
				if reconnecting.Load() && lc.reconnected.CompareAndSwap(false, true) {
					latMu.Lock()
					latencies = append(latencies, time.Since(restartAt).Seconds())
					latMu.Unlock()
					if reconnected.Add(1) == connectedCount.Load() {
						close(reconnectedAll)
					}
				}
			}
		})
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			if err := pairAndConnect(ctx, lc, ctl, phoneFor(i)); err != nil {
				addErr(fmt.Errorf("client %d: %w; %s", i, err, &lc.trail))
				return
			}
			connectedCount.Add(1)
		}(i)
	}
	wg.Wait()
	res.PairSeconds = time.Since(start).Seconds()
	res.Connected = int(connectedCount.Load())
	res.Failed = res.Clients - res.Connected

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.ClientHeapBytes = ms.HeapAlloc
	res.ClientRSSBytes = fakewa.ProcessRSS()
	res.ClientGoroutines = runtime.NumGoroutine()
	serverCPU := 0.0
	if st, err := ctl.Stats(ctx); err == nil {
		res.ServerRSSBytes, res.ServerGoroutines, serverCPU = st.RSSBytes, st.Goroutines, st.CPUSeconds
	} else {
		addErr(fmt.Errorf("server stats: %w", err))
	}

	if res.Connected > 0 {
		restartAt = time.Now()
		reconnecting.Store(true)
		t0, clientCPU := restartAt, fakewa.ProcessCPUSeconds()
		if err := ctl.Restart(ctx); err != nil {
			addErr(fmt.Errorf("restart: %w", err))
		} else {
			select {
			case <-reconnectedAll:
			case <-ctx.Done():
				addErr(errors.New("not every client reconnected before the timeout"))
			}
			res.ReconnectAllSeconds = time.Since(t0).Seconds()
			res.ClientReconnectCPUSeconds = fakewa.ProcessCPUSeconds() - clientCPU
			if st, err := ctl.Stats(ctx); err == nil && serverCPU > 0 {
				res.ServerReconnectCPUSeconds = st.CPUSeconds - serverCPU
				res.ServerHandshakesFailed = st.HandshakesFailed
			}
		}
		res.Reconnected = int(min(reconnected.Load(), connectedCount.Load()))
		latMu.Lock()
		slices.Sort(latencies)
		if len(latencies) > 0 {
			res.ReconnectP50Seconds = latencies[len(latencies)/2]
			res.ReconnectP99Seconds = latencies[len(latencies)*99/100]
		}
		latMu.Unlock()
	}

	var dwg sync.WaitGroup
	for _, lc := range clients {
		if lc != nil {
			dwg.Add(1)
			go func() { defer dwg.Done(); lc.cli.Disconnect() }()
		}
	}
	dwg.Wait()
	return json.NewEncoder(stdout).Encode(res)
}

// phoneFor gives client i a distinct valid phone number.
func phoneFor(i int) string {
	return fmt.Sprintf("5519%09d", i)
}

func pairAndConnect(ctx context.Context, lc *loadClient, ctl *fakewa.ControlClient, phone string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	// Connect, not ConnectContext(ctx): the context given to whatsmeow lives as long as the socket.
	if err := lc.cli.Connect(); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	var qr string
	select {
	case qr = <-lc.qr:
	case <-ctx.Done():
		return fmt.Errorf("no QR: %w", ctx.Err())
	}
	if _, err := ctl.Pair(ctx, qr, phone); err != nil {
		return fmt.Errorf("pair: %w", err)
	}
	select {
	case <-lc.connected:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("not connected after pairing: %w", ctx.Err())
	}
}
