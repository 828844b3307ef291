// Package fakewatest starts fakewa, the fake WhatsApp, for tests that drive the real whatsmeow
// client against it: a server on loopback, closed when the test ends, and the dial settings
// (gateway/wadial) with which the gateway's driver reaches it.
package fakewatest

import (
	"context"
	"testing"

	"wagate/gateway/wadial"
	"wagate/simulator/fakewa"
)

// Start starts a fakewa server with cfg on loopback and closes it when tb ends. A cfg without a
// RootKey gets a fresh one.
func Start(tb testing.TB, cfg fakewa.Config) *fakewa.Server {
	tb.Helper()
	if cfg.RootKey == nil {
		cfg.RootKey = fakewa.GenerateRootKey()
	}
	wa, err := fakewa.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if err := wa.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = wa.Close() })
	return wa
}

// Dial is how the gateway's driver reaches wa: its address and the public root key its
// certificate chain is signed with.
func Dial(wa *fakewa.Server) *wadial.Config {
	return &wadial.Config{Addr: wa.Addr(), RootPubKey: wa.RootPublicKey()}
}
