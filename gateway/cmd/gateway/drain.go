package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"wagate/gateway/config"
)

// drainURL is what `gateway drain` posts to: the URL argument, else /cluster/drain on the loopback
// port of addr (the replica's own API).
func drainURL(args []string, addr string) (string, error) {
	switch len(args) {
	case 0:
	case 1:
		return args[0], nil
	default:
		return "", fmt.Errorf("usage: gateway drain [URL] (got %d arguments)", len(args))
	}
	base, err := localBase(addr)
	if err != nil {
		return "", err
	}
	return base + "/cluster/drain", nil
}

// drain is `gateway drain [URL]`, a scale-down's first step inside a container without a shell or
// curl (docs/cluster.md, "Scaling down"): POST /cluster/drain to the replica's own API with the
// API token of its own settings (the environment and config file the gateway reads), print the
// answer, exit 0 once drained, 1 when the gateway refused or failed, 2 on a usage or settings error.
func drain(args []string) int {
	loaded, err := config.Load(config.Options{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "gateway drain: the gateway's settings: %v\n", err)
		return 2
	}
	cfg := loaded.Config
	url, err := drainURL(args, cfg.Addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway drain:", err)
		return 2
	}
	// The drain is bounded by the shutdown timeout on the gateway's side.
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout+10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway drain:", err)
		return 2
	}
	req.Header.Set("Authorization", "Bearer "+cfg.APIToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway drain:", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(os.Stderr, "gateway drain: %s answered %d: %s\n", url, resp.StatusCode, strings.TrimSpace(string(body)))
		return 1
	}
	fmt.Println(strings.TrimSpace(string(body)))
	return 0
}
