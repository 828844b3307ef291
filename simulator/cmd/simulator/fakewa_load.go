package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"time"

	"wagate/gateway/wadial"
	"wagate/internal/cli"
	"wagate/simulator/fakewa"
)

// loadResult is what fakewa-load prints (one JSON object with -json).
type loadResult struct {
	Clients             int     `json:"clients"`
	Connected           int     `json:"connected"`
	Failed              int     `json:"failed"`
	PairSeconds         float64 `json:"pair_seconds"`
	ReconnectAllSeconds float64 `json:"reconnect_all_seconds"`
	Reconnected         int     `json:"reconnected"`
	// Per-client time from the restart to its Connected, 50th and 99th percentile.
	ReconnectP50Seconds float64 `json:"reconnect_p50_seconds"`
	ReconnectP99Seconds float64 `json:"reconnect_p99_seconds"`
	ServerRSSBytes      uint64  `json:"server_rss_bytes"`
	ClientRSSBytes      uint64  `json:"client_rss_bytes"`
	ServerGoroutines    int     `json:"server_goroutines"`
	ClientGoroutines    int     `json:"client_goroutines"`
	ClientHeapBytes     uint64  `json:"client_heap_bytes"`
	// CPU seconds each process spent in the reconnect-all phase (restart until all reconnected).
	ServerReconnectCPUSeconds float64 `json:"server_reconnect_cpu_seconds"`
	ClientReconnectCPUSeconds float64 `json:"client_reconnect_cpu_seconds"`
	// ServerHandshakesFailed counts connections that closed before finishing the handshake.
	ServerHandshakesFailed int64    `json:"server_handshakes_failed"`
	Concurrency            int      `json:"concurrency"`
	Server                 string   `json:"server"`
	Errors                 []string `json:"errors,omitempty"`
}

// runFakewaLoad is `simulator fakewa-load`: it starts a fakewa in this process (or uses a running
// one), runs the whatsmeow clients in a child process (this binary, hidden command
// loadClientsCommand), and prints the figures.
func runFakewaLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fakewa-load", flag.ContinueOnError)
	clients := fs.Int("clients", 100, "whatsmeow clients to pair and connect")
	concurrency := fs.Int("concurrency", 50, "pairings in flight at once")
	asJSON := fs.Bool("json", false, "print one JSON object")
	addr := fs.String("addr", "", "use the running fakewa at this WebSocket address (needs -control; -root-key or the control API gives the key)")
	control := fs.String("control", "", "control API address of the running fakewa given with -addr")
	rootKeyFile := fs.String("root-key", "", "root public key FILE (hex) of the running fakewa")
	timeout := fs.Duration("timeout", 20*time.Minute, "bound on the whole run")
	storeDir := fs.String("store-dir", "", "directory for the clients' SQLite stores (default: a temporary directory, removed)")
	usage := cli.Defaults(fs, "usage: simulator fakewa-load -clients N -concurrency C [-json] [-addr HOST:PORT -control HOST:PORT [-root-key FILE]]\n")
	if code, done := cli.Parse(fs, args, stdout, stderr, usage); done {
		if code == cli.ExitOK {
			return nil
		}
		return errUsage
	}
	if *clients <= 0 || *concurrency <= 0 {
		return errors.New("-clients and -concurrency must be positive")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	raiseFileLimit()

	serverDesc := "in-process"
	var rootHex string
	if *addr == "" {
		srv, err := fakewa.New(fakewa.Config{Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
		if err != nil {
			return err
		}
		if err := srv.Start(ctx); err != nil {
			return err
		}
		defer srv.Close()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		api := &http.Server{Handler: srv.ControlHandler(), ReadHeaderTimeout: 10 * time.Second}
		go api.Serve(ln)
		defer api.Close()
		*addr, *control, rootHex = srv.Addr(), ln.Addr().String(), hex.EncodeToString(srv.RootPublicKey())
	} else {
		serverDesc = *addr
		if *control == "" {
			return errors.New("-addr needs -control: pairing goes through the fakewa control API")
		}
		for _, a := range []string{*addr, *control} {
			if err := requireLoopback(a); err != nil {
				return err
			}
		}
		if *rootKeyFile != "" {
			key, err := wadial.LoadRootKeyFile(*rootKeyFile)
			if err != nil {
				return err
			}
			rootHex = hex.EncodeToString(key)
		} else {
			_, key, err := fakewa.NewControlClient(*control).Info(ctx)
			if err != nil {
				return err
			}
			rootHex = hex.EncodeToString(key)
		}
	}
	dir := *storeDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "fakewa-load-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}

	exe, err := os.Executable()
	if err != nil {
		return err
	}
	child := exec.CommandContext(ctx, exe, loadClientsCommand,
		"-addr", *addr, "-control", *control, "-root-key-hex", rootHex,
		"-clients", strconv.Itoa(*clients), "-concurrency", strconv.Itoa(*concurrency),
		"-store-dir", dir, "-timeout", timeout.String())
	var out bytes.Buffer
	child.Stdout, child.Stderr = &out, stderr
	child.WaitDelay = 10 * time.Second
	if err := child.Run(); err != nil {
		return fmt.Errorf("client process: %w", err)
	}
	var res loadResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return fmt.Errorf("client process output %q: %w", out.String(), err)
	}
	res.Server = serverDesc
	if *asJSON {
		return json.NewEncoder(stdout).Encode(res)
	}
	fmt.Fprintf(stdout, "clients %d  connected %d  failed %d  (concurrency %d, server %s)\n", res.Clients, res.Connected, res.Failed, res.Concurrency, res.Server)
	fmt.Fprintf(stdout, "pair+connect all: %.1f s   reconnect all after restart: %.1f s (%d reconnected; p50 %.2f s, p99 %.2f s; CPU server %.1f s, clients %.1f s)\n",
		res.PairSeconds, res.ReconnectAllSeconds, res.Reconnected, res.ReconnectP50Seconds, res.ReconnectP99Seconds,
		res.ServerReconnectCPUSeconds, res.ClientReconnectCPUSeconds)
	fmt.Fprintf(stdout, "server: RSS %.1f MiB, %d goroutines   clients: RSS %.1f MiB, heap %.1f MiB, %d goroutines\n",
		float64(res.ServerRSSBytes)/(1<<20), res.ServerGoroutines, float64(res.ClientRSSBytes)/(1<<20), float64(res.ClientHeapBytes)/(1<<20), res.ClientGoroutines)
	if res.ServerHandshakesFailed > 0 {
		fmt.Fprintf(stdout, "server: %d handshakes did not complete\n", res.ServerHandshakesFailed)
	}
	for _, e := range res.Errors {
		fmt.Fprintln(stdout, "error:", e)
	}
	return nil
}
