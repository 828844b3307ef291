package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"time"

	"wagate/internal/cli"
	"wagate/simulator/fakewa"
)

// fakewaReady is the one JSON line `simulator fakewa` prints on stdout once it serves.
type fakewaReady struct {
	Addr          string `json:"addr"`
	Control       string `json:"control"`
	RootPublicKey string `json:"root_public_key"`
	RootKeyFile   string `json:"root_key_file,omitempty"`
}

// runFakewa is `simulator fakewa`: a standalone fakewa until ctx ends (SIGINT/SIGTERM).
func runFakewa(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fakewa", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "WebSocket listen address (loopback)")
	control := fs.String("control", "127.0.0.1:0", "JSON control API listen address (loopback)")
	rootKeyFile := fs.String("root-key", "", "root key FILE: the public key in hex; the private key is in FILE"+fakewa.PrivateKeySuffix+
		" (mode 0600); both created when FILE is absent. Empty: a fresh key for this run")
	pairRefs := fs.Int("pair-refs", 6, "pair-device refs (QR codes) per unpaired client")
	receipts := fs.String("receipts", "read", "receipts after a message ack: read (delivery then read), delivered, none")
	receiptDelay := fs.Duration("receipt-delay", 0, "pause before each receipt")
	closeDelay := fs.Duration("stream-error-close-delay", 200*time.Millisecond, "pause between a stream:error and the close")
	verbose := fs.Bool("v", false, "debug logs on stderr")
	usage := cli.Defaults(fs, "usage: simulator fakewa [-listen ADDR] [-control ADDR] [-root-key FILE] [flags]\n")
	if code, done := cli.Parse(fs, args, stdout, stderr, usage); done {
		if code == cli.ExitOK {
			return nil
		}
		return errUsage
	}
	for _, addr := range []string{*listen, *control} {
		if err := requireLoopback(addr); err != nil {
			return err
		}
	}
	policy, err := parseReceipts(*receipts)
	if err != nil {
		return err
	}
	raiseFileLimit()
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	root := fakewa.GenerateRootKey()
	if *rootKeyFile != "" {
		if root, err = fakewa.LoadOrCreateRootKey(*rootKeyFile); err != nil {
			return err
		}
	}
	srv, err := fakewa.New(fakewa.Config{
		Listen: *listen, RootKey: root, PairRefs: *pairRefs, Receipts: policy, ReceiptDelay: *receiptDelay,
		StreamErrorCloseDelay: *closeDelay, Logger: logger,
	})
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", *control)
	if err != nil {
		return fmt.Errorf("control listen: %w", err)
	}
	api := &http.Server{Handler: srv.ControlHandler(), ReadHeaderTimeout: 10 * time.Second}
	go api.Serve(ln)
	defer api.Close()

	ready := fakewaReady{Addr: srv.Addr(), Control: ln.Addr().String(), RootPublicKey: root.PublicHex(), RootKeyFile: *rootKeyFile}
	if err := json.NewEncoder(stdout).Encode(ready); err != nil {
		return err
	}
	logger.Info("fakewa serving", "ws", "ws://"+ready.Addr+"/ws/chat", "control", "http://"+ready.Control, "root_public_key", ready.RootPublicKey)
	<-ctx.Done()
	logger.Info("fakewa stopping")
	return nil
}

func parseReceipts(s string) (fakewa.ReceiptPolicy, error) {
	switch s {
	case "read":
		return fakewa.ReceiptsDeliveredAndRead, nil
	case "delivered":
		return fakewa.ReceiptsDelivered, nil
	case "none":
		return fakewa.ReceiptsNone, nil
	}
	return 0, fmt.Errorf("-receipts %q: want read, delivered or none", s)
}

// requireLoopback refuses listen addresses off the loopback interface: the harness is loopback only.
func requireLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("address %q is not loopback: the harness listens on loopback only", addr)
	}
	return nil
}

// raiseFileLimit lifts the soft open-file limit to the hard limit: thousands of sockets.
func raiseFileLimit() {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur >= lim.Max {
		return
	}
	lim.Cur = lim.Max
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim) // best effort: the limit only caps scale
}
