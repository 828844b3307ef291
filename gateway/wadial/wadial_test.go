package wadial

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store"
)

func TestHTTPClientSendsWhatsAppURLsToTheConfiguredAddressOverPlainTCP(t *testing.T) {
	var gotHost, gotPath string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotHost, gotPath = r.Host, r.URL.Path
		io.WriteString(w, "fake")
	}))
	defer srv.Close()

	cfg := Config{Addr: srv.Listener.Addr().String(), RootPubKey: bytes.Repeat([]byte{7}, 32)}
	resp, err := cfg.HTTPClient().Get("https://web.whatsapp.com/ws/chat")
	if err != nil {
		t.Fatalf("GET through test dialer: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "fake" || gotPath != "/ws/chat" || gotHost != "web.whatsapp.com" {
		t.Fatalf("reached %q%q with body %q; want the local server to see web.whatsapp.com/ws/chat", gotHost, gotPath, body)
	}
	if resp.ProtoMajor != 1 {
		t.Fatalf("protocol %s, want HTTP/1.1", resp.Proto)
	}
}

func TestApplySetsTheProcessRootKeyAndRejectsBadConfigs(t *testing.T) {
	original := RootKey()
	t.Cleanup(func() {
		if err := SetRootKey(original); err != nil {
			t.Fatal(err)
		}
	})
	cli := whatsmeow.NewClient(&store.Device{}, nil)

	key := bytes.Repeat([]byte{0x42}, 32)
	if err := (Config{Addr: "127.0.0.1:1", RootPubKey: key}).Apply(cli); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if !bytes.Equal(whatsmeow.WACertPubKey[:], key) {
		t.Fatalf("WACertPubKey = %x, want %x", whatsmeow.WACertPubKey, key)
	}

	for name, cfg := range map[string]Config{
		"no port":     {Addr: "127.0.0.1", RootPubKey: key},
		"short key":   {Addr: "127.0.0.1:1", RootPubKey: key[:31]},
		"missing key": {Addr: "127.0.0.1:1"},
	} {
		if err := cfg.Apply(cli); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: Apply error = %v, want ErrInvalidConfig", name, err)
		}
	}
	if err := (Config{Addr: "127.0.0.1:1", RootPubKey: key}).Apply(nil); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("nil client: error = %v, want ErrInvalidConfig", err)
	}
}

func TestLoadRootKeyFileReadsHexWithSurroundingWhitespace(t *testing.T) {
	key := bytes.Repeat([]byte{0xab}, 32)
	path := filepath.Join(t.TempDir(), "root.pub")
	if err := os.WriteFile(path, []byte("  "+hex.EncodeToString(key)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := LoadRootKeyFile(path)
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("LoadRootKeyFile = %x, %v; want %x", got, err, key)
	}
	if _, err := ParseRootKeyHex(strings.Repeat("ab", 31)); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("31-byte key: error = %v, want ErrInvalidConfig", err)
	}
	if _, err := ParseRootKeyHex("zz"); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("bad hex: error = %v, want ErrInvalidConfig", err)
	}
	if _, err := LoadRootKeyFile(filepath.Join(t.TempDir(), "absent")); err == nil {
		t.Fatal("absent file: want an error")
	}
}
