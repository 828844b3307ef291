// Package wadial points a whatsmeow client at a WhatsApp server other than WhatsApp's: the
// test-only settings.
//
// whatsmeow always dials wss://web.whatsapp.com/ws/chat and trusts only WhatsApp's noise root key
// (the process-global whatsmeow.WACertPubKey). A harness that runs the production gateway against
// a fake WhatsApp server (simulator/fakewa) needs two things changed, and nothing else:
//
//   - where the client connects: an HTTP client whose transport ignores the URL's host and opens a
//     plain TCP connection to Config.Addr (the WebSocket upgrade then runs as cleartext HTTP/1.1;
//     the Noise handshake inside still authenticates the server);
//   - which root key the client trusts: Config.RootPubKey replaces whatsmeow.WACertPubKey.
//
// EVERYTHING IN THIS PACKAGE IS FOR TESTS AND BENCHMARKS ONLY. A client configured with it does
// not talk to WhatsApp and does not verify WhatsApp's identity. Callers must gate it behind an
// explicit setting (the gateway uses WAGATE_WA_INSECURE_TEST=1) and log loudly when it is used.
//
// whatsmeow's MessengerConfig is deliberately not used: it switches the client into Messenger
// behaviour (Logout fails, numeric message IDs, no device identity on pkmsg).
package wadial

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"go.mau.fi/whatsmeow"
)

// rootKeyMu serialises writers of whatsmeow.WACertPubKey, the one global this package must change.
var rootKeyMu sync.Mutex

// RootKeySize is the length in bytes of a noise root public key (an X25519/XEdDSA key).
const RootKeySize = 32

// Warning is the line a caller should log (at warn level or louder) whenever it applies a Config.
const Warning = "INSECURE TEST SETTING: WhatsApp client dials a fake server and trusts a non-WhatsApp root key"

// ErrInvalidConfig is wrapped by every validation error of this package.
var ErrInvalidConfig = errors.New("wadial: invalid test-only dial config")

// Config says where a test-only WhatsApp server listens and which root key it signs with.
// Test-only: see the package documentation.
type Config struct {
	// Addr is the host:port of the fake server's plain-TCP WebSocket listener (loopback).
	Addr string
	// RootPubKey is the 32-byte public root key the fake server's certificate chain is signed with.
	RootPubKey []byte
	// DialTimeout bounds each TCP dial; zero means 10 s.
	DialTimeout time.Duration
}

// Validate reports whether c is usable: an address with a port and a 32-byte root key.
func (c Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("%w: address %q: %w", ErrInvalidConfig, c.Addr, err)
	}
	if len(c.RootPubKey) != RootKeySize {
		return fmt.Errorf("%w: root key has %d bytes, want %d", ErrInvalidConfig, len(c.RootPubKey), RootKeySize)
	}
	return nil
}

// HTTPClient returns an HTTP client that sends every request, whatever its URL, over plain TCP to
// c.Addr: no proxy, no TLS, HTTP/1.1 only. Test-only.
func (c Config) HTTPClient() *http.Client {
	timeout := c.DialTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	addr := c.Addr
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		return dialer.DialContext(ctx, "tcp", addr)
	}
	return &http.Client{Transport: &http.Transport{
		Proxy:             nil,
		DialContext:       dial,
		DialTLSContext:    dial,
		ForceAttemptHTTP2: false,
		MaxIdleConns:      1,
		IdleConnTimeout:   10 * time.Second,
	}}
}

// Apply points cli at c.Addr (both the pre-login and the logged-in WebSocket HTTP clients) and
// makes the process trust c.RootPubKey (see SetRootKey). Call it before cli.Connect. Test-only:
// the caller must have logged Warning.
func (c Config) Apply(cli *whatsmeow.Client) error {
	if cli == nil {
		return fmt.Errorf("%w: nil client", ErrInvalidConfig)
	}
	if err := c.Validate(); err != nil {
		return err
	}
	if err := SetRootKey(c.RootPubKey); err != nil {
		return err
	}
	httpClient := c.HTTPClient()
	cli.SetPreLoginHTTPClient(httpClient)
	cli.SetWebsocketHTTPClient(httpClient)
	return nil
}

// SetRootKey replaces whatsmeow.WACertPubKey, the root of trust of every whatsmeow client in the
// process, with pub. It writes the variable only when the value changes, so calling it again with
// the same key while clients are connecting is safe; changing it while handshakes are running is a
// data race in whatsmeow's global, so set it once at start-up. Test-only.
func SetRootKey(pub []byte) error {
	if len(pub) != RootKeySize {
		return fmt.Errorf("%w: root key has %d bytes, want %d", ErrInvalidConfig, len(pub), RootKeySize)
	}
	rootKeyMu.Lock()
	defer rootKeyMu.Unlock()
	if subtle.ConstantTimeCompare(whatsmeow.WACertPubKey[:], pub) == 1 {
		return nil
	}
	copy(whatsmeow.WACertPubKey[:], pub)
	return nil
}

// RootKey returns a copy of the root key whatsmeow currently trusts.
func RootKey() []byte {
	return bytes.Clone(whatsmeow.WACertPubKey[:])
}

// ParseRootKeyHex decodes a root public key written as hex (surrounding whitespace ignored).
func ParseRootKeyHex(s string) ([]byte, error) {
	key, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("%w: root key hex: %w", ErrInvalidConfig, err)
	}
	if len(key) != RootKeySize {
		return nil, fmt.Errorf("%w: root key has %d bytes, want %d", ErrInvalidConfig, len(key), RootKeySize)
	}
	return key, nil
}

// LoadRootKeyFile reads a root public key file as written by simulator/fakewa (-root-key FILE):
// the key in hex on one line.
func LoadRootKeyFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("wadial: read root key file: %w", err)
	}
	return ParseRootKeyHex(string(data))
}
