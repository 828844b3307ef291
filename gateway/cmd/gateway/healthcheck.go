package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// healthcheckTimeout bounds `gateway healthcheck`.
const healthcheckTimeout = 3 * time.Second

// healthcheckURL is what `gateway healthcheck` asks: the URL argument, else /readyz on the
// loopback port of addr (WAGATE_ADDR, ":4000" when unset).
func healthcheckURL(args []string, addr string) (string, error) {
	switch len(args) {
	case 0:
	case 1:
		return args[0], nil
	default:
		return "", fmt.Errorf("usage: gateway healthcheck [URL] (got %d arguments)", len(args))
	}
	base, err := localBase(addr)
	if err != nil {
		return "", err
	}
	return base + "/readyz", nil
}

// localBase is the URL this machine reaches the API listening on addr (WAGATE_ADDR, ":4000"
// when unset) at: a wildcard host is the loopback address.
func localBase(addr string) (string, error) {
	if addr == "" {
		addr = ":4000"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("WAGATE_ADDR %q: %w", addr, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

// healthcheck is `gateway healthcheck [URL]`, the container's health probe (distroless images
// have no shell or curl): exit 0 when GET URL answers 200, 1 otherwise, saying why on stderr.
func healthcheck(args []string) int {
	url, err := healthcheckURL(args, os.Getenv("WAGATE_ADDR"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway healthcheck:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), healthcheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway healthcheck:", err)
		return 2
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway healthcheck:", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(os.Stderr, "gateway healthcheck: %s answered %d: %s\n", url, resp.StatusCode, strings.TrimSpace(string(body)))
		return 1
	}
	return 0
}
