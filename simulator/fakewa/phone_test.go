package fakewa

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func b64(n int) string {
	return base64.StdEncoding.EncodeToString(make([]byte, n))
}

func TestParseQRAcceptsBothFormats(t *testing.T) {
	noise, ident, adv := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("n", 32))),
		base64.StdEncoding.EncodeToString([]byte(strings.Repeat("i", 32))),
		base64.StdEncoding.EncodeToString([]byte(strings.Repeat("a", 32)))
	plain := "2@ref+/=," + noise + "," + ident + "," + adv
	for name, s := range map[string]string{
		"plain":             plain,
		"plain with spaces": "  " + plain + "\n",
		"url fragment":      "https://wa.me/settings/linked_devices#" + plain + ",1",
	} {
		q, err := ParseQR(s)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if q.Ref != "2@ref+/=" || q.NoisePub[0] != 'n' || q.IdentityPub[0] != 'i' || string(q.AdvSecret[:2]) != "aa" {
			t.Fatalf("%s: parsed %+v", name, q)
		}
	}
	for name, s := range map[string]string{
		"too few fields": "ref," + noise + "," + ident,
		"bad base64":     "ref,***," + ident + "," + adv,
		"short key":      "ref," + b64(31) + "," + ident + "," + adv,
		"empty ref":      "," + noise + "," + ident + "," + adv,
	} {
		if _, err := ParseQR(s); !errors.Is(err, ErrBadQR) {
			t.Fatalf("%s: error %v, want ErrBadQR", name, err)
		}
	}
}

func TestRootKeyFileIsCreatedOnceAndReloaded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "root.pub")
	created, err := LoadOrCreateRootKey(path)
	if err != nil {
		t.Fatal(err)
	}
	pubFile, _ := os.ReadFile(path)
	if strings.TrimSpace(string(pubFile)) != created.PublicHex() {
		t.Fatalf("public file %q, want %s", pubFile, created.PublicHex())
	}
	if info, err := os.Stat(path + PrivateKeySuffix); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("private key file: %v, mode %v; want 0600", err, info.Mode())
	}
	loaded, err := LoadOrCreateRootKey(path)
	if err != nil || *loaded != *created {
		t.Fatalf("reload: %v, same key %v", err, loaded != nil && *loaded == *created)
	}

	other := GenerateRootKey()
	os.WriteFile(path, []byte(other.PublicHex()), 0o644)
	if _, err := LoadOrCreateRootKey(path); err == nil {
		t.Fatal("mismatched public and private files loaded without error")
	}
	os.Remove(path + PrivateKeySuffix)
	if _, err := LoadOrCreateRootKey(path); err == nil {
		t.Fatal("public file without private file loaded without error")
	}
}
