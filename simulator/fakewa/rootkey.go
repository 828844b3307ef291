package fakewa

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"go.mau.fi/whatsmeow/util/keys"
)

// PrivateKeySuffix is appended to a root key file's path to name the file holding its private key.
const PrivateKeySuffix = ".private"

// RootKey is the key pair at the top of fakewa's certificate chain: clients trust Pub the way real
// clients trust WhatsApp's root key.
type RootKey struct {
	Pub  [32]byte
	Priv [32]byte
}

// GenerateRootKey makes a new random root key pair.
func GenerateRootKey() *RootKey {
	kp := keys.NewKeyPair()
	return &RootKey{Pub: *kp.Pub, Priv: *kp.Priv}
}

// RootKeyFromSeed derives a root key pair from seed: the same seed gives the same key. It is meant
// for tests, where every fakewa server and every whatsmeow client of one test binary must agree on
// one root key (whatsmeow trusts a single process-global key) without sharing state: each package's
// tests call RootKeyFromSeed with a fixed seed and wadial.SetRootKey once. Not for anything secret.
func RootKeyFromSeed(seed []byte) *RootKey {
	priv := sha256.Sum256(append([]byte("fakewa root key seed\x00"), seed...))
	priv[0] &= 248
	priv[31] &= 127
	priv[31] |= 64
	kp := keys.NewKeyPairFromPrivateKey(priv)
	return &RootKey{Pub: *kp.Pub, Priv: *kp.Priv}
}

// PublicHex returns the public key in lowercase hex, the format of a root key file.
func (k *RootKey) PublicHex() string {
	return hex.EncodeToString(k.Pub[:])
}

// LoadOrCreateRootKey loads the root key stored at path, creating it when path does not exist.
//
// Layout: path holds the public key in hex on one line (what a client, e.g. the gateway through
// gateway/wadial, is told to trust); path + PrivateKeySuffix holds the private key in hex, with
// mode 0600. Both are written when path is absent (the private file first). A public file without
// its private file is an error: the server could not sign a chain the clients would accept.
func LoadOrCreateRootKey(path string) (*RootKey, error) {
	pubData, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key := GenerateRootKey()
		if err := os.WriteFile(path+PrivateKeySuffix, []byte(hex.EncodeToString(key.Priv[:])+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("fakewa: write root private key: %w", err)
		}
		if err := os.WriteFile(path, []byte(key.PublicHex()+"\n"), 0o644); err != nil {
			return nil, fmt.Errorf("fakewa: write root public key: %w", err)
		}
		return key, nil
	} else if err != nil {
		return nil, fmt.Errorf("fakewa: read root public key: %w", err)
	}
	privData, err := os.ReadFile(path + PrivateKeySuffix)
	if err != nil {
		return nil, fmt.Errorf("fakewa: read root private key (%s): %w", path+PrivateKeySuffix, err)
	}
	pub, err := decodeKeyHex(string(pubData))
	if err != nil {
		return nil, fmt.Errorf("fakewa: root public key %s: %w", path, err)
	}
	priv, err := decodeKeyHex(string(privData))
	if err != nil {
		return nil, fmt.Errorf("fakewa: root private key: %w", err)
	}
	derived := keys.NewKeyPairFromPrivateKey(priv)
	if *derived.Pub != pub {
		return nil, fmt.Errorf("fakewa: root key files %s and %s do not belong together", path, path+PrivateKeySuffix)
	}
	return &RootKey{Pub: pub, Priv: priv}, nil
}

func decodeKeyHex(s string) ([32]byte, error) {
	var out [32]byte
	raw, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return out, fmt.Errorf("hex: %w", err)
	}
	if len(raw) != len(out) {
		return out, fmt.Errorf("key has %d bytes, want %d", len(raw), len(out))
	}
	copy(out[:], raw)
	return out, nil
}
