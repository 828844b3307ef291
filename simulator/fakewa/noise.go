package fakewa

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"go.mau.fi/libsignal/ecc"
	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/hkdf"
	"google.golang.org/protobuf/proto"

	"go.mau.fi/whatsmeow/proto/waCert"
	"go.mau.fi/whatsmeow/proto/waWa6"
	"go.mau.fi/whatsmeow/socket"
	"go.mau.fi/whatsmeow/util/keys"
)

// ErrHandshake is wrapped by every error of the server side of the Noise handshake.
var ErrHandshake = errors.New("fakewa: noise handshake")

// noiseState is the symmetric state of a Noise_XX_25519_AESGCM_SHA256 handshake as WhatsApp runs
// it (the same computation as whatsmeow's socket.NoiseHandshake, seen from the server).
type noiseState struct {
	hash    []byte
	salt    []byte
	key     cipher.AEAD
	counter uint32
}

func newAEAD(key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(fmt.Sprintf("fakewa: aes key of %d bytes: %v", len(key), err)) // keys here are always 32 bytes
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		panic(fmt.Sprintf("fakewa: gcm: %v", err))
	}
	return gcm
}

// nonce is the 12-byte GCM IV: 8 zero bytes and a big-endian counter.
func nonce(counter uint32) []byte {
	iv := make([]byte, 12)
	binary.BigEndian.PutUint32(iv[8:], counter)
	return iv
}

func newNoiseState(header []byte) *noiseState {
	pattern := []byte(socket.NoiseStartPattern) // exactly 32 bytes: used as the initial hash as-is
	ns := &noiseState{hash: pattern, salt: pattern, key: newAEAD(pattern)}
	ns.authenticate(header)
	return ns
}

func (ns *noiseState) authenticate(data []byte) {
	h := sha256.New()
	h.Write(ns.hash)
	h.Write(data)
	ns.hash = h.Sum(nil)
}

func (ns *noiseState) encrypt(plaintext []byte) []byte {
	ct := ns.key.Seal(nil, nonce(ns.counter), plaintext, ns.hash)
	ns.counter++
	ns.authenticate(ct)
	return ct
}

func (ns *noiseState) decrypt(ciphertext []byte) ([]byte, error) {
	pt, err := ns.key.Open(nil, nonce(ns.counter), ciphertext, ns.hash)
	ns.counter++
	if err != nil {
		return nil, err
	}
	ns.authenticate(ciphertext)
	return pt, nil
}

func expand(salt, secret []byte) (first, second []byte) {
	r := hkdf.New(sha256.New, secret, salt, nil)
	out := make([]byte, 64)
	if _, err := io.ReadFull(r, out); err != nil {
		panic(fmt.Sprintf("fakewa: hkdf: %v", err)) // 64 bytes is far below HKDF-SHA256's limit
	}
	return out[:32], out[32:]
}

func (ns *noiseState) mixDH(priv, pub [32]byte) error {
	secret, err := curve25519.X25519(priv[:], pub[:])
	if err != nil {
		return err
	}
	salt, key := expand(ns.salt, secret)
	ns.salt, ns.key, ns.counter = salt, newAEAD(key), 0
	return nil
}

// transportKeys splits the final keys: the client writes with the first and reads with the
// second, so the server reads with the first and writes with the second.
func (ns *noiseState) transportKeys() (read, write cipher.AEAD) {
	k1, k2 := expand(ns.salt, nil)
	return newAEAD(k1), newAEAD(k2)
}

// certChain builds the chain whatsmeow's verifyServerCert accepts: an intermediate certificate
// (serial 1, issuer 0) signed by the root key and a leaf for the server's static key (serial 2,
// issuer 1) signed by the intermediate.
func certChain(root *RootKey, static *keys.KeyPair, now time.Time) ([]byte, error) {
	inter := keys.NewKeyPair()
	notBefore, notAfter := uint64(now.Add(-time.Hour).Unix()), uint64(now.Add(10*365*24*time.Hour).Unix())
	interDetails, err := proto.Marshal(&waCert.CertChain_NoiseCertificate_Details{
		Serial: proto.Uint32(1), IssuerSerial: proto.Uint32(0), Key: inter.Pub[:],
		NotBefore: proto.Uint64(notBefore), NotAfter: proto.Uint64(notAfter),
	})
	if err != nil {
		return nil, err
	}
	leafDetails, err := proto.Marshal(&waCert.CertChain_NoiseCertificate_Details{
		Serial: proto.Uint32(2), IssuerSerial: proto.Uint32(1), Key: static.Pub[:],
		NotBefore: proto.Uint64(notBefore), NotAfter: proto.Uint64(notAfter),
	})
	if err != nil {
		return nil, err
	}
	interSig := ecc.CalculateSignature(ecc.NewDjbECPrivateKey(root.Priv), interDetails)
	leafSig := ecc.CalculateSignature(ecc.NewDjbECPrivateKey(*inter.Priv), leafDetails)
	return proto.Marshal(&waCert.CertChain{
		Intermediate: &waCert.CertChain_NoiseCertificate{Details: interDetails, Signature: interSig[:]},
		Leaf:         &waCert.CertChain_NoiseCertificate{Details: leafDetails, Signature: leafSig[:]},
	})
}

// serverHandshake runs the server half of one handshake. Use hello, then finish.
type serverHandshake struct {
	ns        *noiseState
	static    *keys.KeyPair
	chain     []byte
	ephemeral *keys.KeyPair
}

func newServerHandshake(header []byte, static *keys.KeyPair, chain []byte) *serverHandshake {
	return &serverHandshake{ns: newNoiseState(header), static: static, chain: chain}
}

// hello consumes the client's first handshake frame (ClientHello) and returns the ServerHello
// frame to send.
func (hs *serverHandshake) hello(frame []byte) ([]byte, error) {
	var msg waWa6.HandshakeMessage
	if err := proto.Unmarshal(frame, &msg); err != nil {
		return nil, fmt.Errorf("%w: client hello: %w", ErrHandshake, err)
	}
	clientEphemeral := msg.GetClientHello().GetEphemeral()
	if len(clientEphemeral) != 32 {
		return nil, fmt.Errorf("%w: client hello ephemeral has %d bytes", ErrHandshake, len(clientEphemeral))
	}
	hs.ns.authenticate(clientEphemeral)
	hs.ephemeral = keys.NewKeyPair()
	hs.ns.authenticate(hs.ephemeral.Pub[:])
	if err := hs.ns.mixDH(*hs.ephemeral.Priv, [32]byte(clientEphemeral)); err != nil {
		return nil, fmt.Errorf("%w: ee: %w", ErrHandshake, err)
	}
	encStatic := hs.ns.encrypt(hs.static.Pub[:])
	if err := hs.ns.mixDH(*hs.static.Priv, [32]byte(clientEphemeral)); err != nil {
		return nil, fmt.Errorf("%w: se: %w", ErrHandshake, err)
	}
	encCert := hs.ns.encrypt(hs.chain)
	out, err := proto.Marshal(&waWa6.HandshakeMessage{ServerHello: &waWa6.HandshakeMessage_ServerHello{
		Ephemeral: hs.ephemeral.Pub[:], Static: encStatic, Payload: encCert,
	}})
	if err != nil {
		return nil, fmt.Errorf("%w: marshal server hello: %w", ErrHandshake, err)
	}
	return out, nil
}

// handshakeResult is what a completed handshake yields.
type handshakeResult struct {
	clientStatic [32]byte
	payload      *waWa6.ClientPayload
	read, write  cipher.AEAD
}

// finish consumes the ClientFinish frame: the client's static key and its ClientPayload.
func (hs *serverHandshake) finish(frame []byte) (*handshakeResult, error) {
	if hs.ephemeral == nil {
		return nil, fmt.Errorf("%w: finish before hello", ErrHandshake)
	}
	var msg waWa6.HandshakeMessage
	if err := proto.Unmarshal(frame, &msg); err != nil {
		return nil, fmt.Errorf("%w: client finish: %w", ErrHandshake, err)
	}
	staticPlain, err := hs.ns.decrypt(msg.GetClientFinish().GetStatic())
	if err != nil {
		return nil, fmt.Errorf("%w: decrypt client static: %w", ErrHandshake, err)
	} else if len(staticPlain) != 32 {
		return nil, fmt.Errorf("%w: client static has %d bytes", ErrHandshake, len(staticPlain))
	}
	clientStatic := [32]byte(staticPlain)
	if err := hs.ns.mixDH(*hs.ephemeral.Priv, clientStatic); err != nil {
		return nil, fmt.Errorf("%w: es: %w", ErrHandshake, err)
	}
	payloadPlain, err := hs.ns.decrypt(msg.GetClientFinish().GetPayload())
	if err != nil {
		return nil, fmt.Errorf("%w: decrypt client payload: %w", ErrHandshake, err)
	}
	var payload waWa6.ClientPayload
	if err := proto.Unmarshal(payloadPlain, &payload); err != nil {
		return nil, fmt.Errorf("%w: client payload: %w", ErrHandshake, err)
	}
	read, write := hs.ns.transportKeys()
	return &handshakeResult{clientStatic: clientStatic, payload: &payload, read: read, write: write}, nil
}
