package fakewa

import (
	"context"
	"sync"

	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/libsignal/serialize"
	"go.mau.fi/libsignal/state/record"

	"go.mau.fi/whatsmeow/util/keys"
)

// signalSerializer is the serializer whatsmeow uses for its Signal records and messages.
var signalSerializer = serialize.NewProtoBufSerializer()

// phoneSignal is the Signal state of one contact phone that writes to devices: its identity key
// pair, its registration ID and its sessions with the devices it wrote to, kept in memory. It
// implements the libsignal stores a sender needs (sessions and identities); a sender has no
// prekeys of its own, so those stores are empty. mu serializes every use.
type phoneSignal struct {
	mu       sync.Mutex
	identity *identity.KeyPair
	regID    uint32
	sessions map[string]*record.Session // by the device's Signal address
	trusted  map[string]*identity.Key
}

func newPhoneSignal(key *keys.KeyPair, regID uint32) *phoneSignal {
	pub := identity.NewKey(ecc.NewDjbECPublicKey(*key.Pub))
	return &phoneSignal{
		identity: identity.NewKeyPair(pub, ecc.NewDjbECPrivateKey(*key.Priv)),
		regID:    regID,
		sessions: make(map[string]*record.Session),
		trusted:  make(map[string]*identity.Key),
	}
}

// GetIdentityKeyPair implements store.IdentityKey.
func (p *phoneSignal) GetIdentityKeyPair() *identity.KeyPair { return p.identity }

// GetLocalRegistrationID implements store.IdentityKey.
func (p *phoneSignal) GetLocalRegistrationID() uint32 { return p.regID }

// SaveIdentity implements store.IdentityKey.
func (p *phoneSignal) SaveIdentity(_ context.Context, a *protocol.SignalAddress, k *identity.Key) error {
	p.trusted[a.String()] = k
	return nil
}

// IsTrustedIdentity implements store.IdentityKey: trust on first use, then only the same key.
func (p *phoneSignal) IsTrustedIdentity(_ context.Context, a *protocol.SignalAddress, k *identity.Key) (bool, error) {
	t, ok := p.trusted[a.String()]
	return !ok || t.Fingerprint() == k.Fingerprint(), nil
}

// LoadSession implements store.Session; an unknown address gets a fresh record.
func (p *phoneSignal) LoadSession(_ context.Context, a *protocol.SignalAddress) (*record.Session, error) {
	if s, ok := p.sessions[a.String()]; ok {
		return s, nil
	}
	return record.NewSession(signalSerializer.Session, signalSerializer.State), nil
}

// GetSubDeviceSessions implements store.Session (unused by a sender).
func (p *phoneSignal) GetSubDeviceSessions(context.Context, string) ([]uint32, error) {
	return nil, nil
}

// StoreSession implements store.Session.
func (p *phoneSignal) StoreSession(_ context.Context, a *protocol.SignalAddress, r *record.Session) error {
	p.sessions[a.String()] = r
	return nil
}

// ContainsSession implements store.Session.
func (p *phoneSignal) ContainsSession(_ context.Context, a *protocol.SignalAddress) (bool, error) {
	_, ok := p.sessions[a.String()]
	return ok, nil
}

// DeleteSession implements store.Session.
func (p *phoneSignal) DeleteSession(_ context.Context, a *protocol.SignalAddress) error {
	delete(p.sessions, a.String())
	return nil
}

// DeleteAllSessions implements store.Session.
func (p *phoneSignal) DeleteAllSessions(context.Context) error {
	clear(p.sessions)
	return nil
}

// LoadPreKey implements store.PreKey: a sender has none.
func (p *phoneSignal) LoadPreKey(context.Context, uint32) (*record.PreKey, error) { return nil, nil }

// StorePreKey implements store.PreKey.
func (p *phoneSignal) StorePreKey(context.Context, uint32, *record.PreKey) error { return nil }

// ContainsPreKey implements store.PreKey.
func (p *phoneSignal) ContainsPreKey(context.Context, uint32) (bool, error) { return false, nil }

// RemovePreKey implements store.PreKey.
func (p *phoneSignal) RemovePreKey(context.Context, uint32) error { return nil }

// LoadSignedPreKey implements store.SignedPreKey: a sender has none.
func (p *phoneSignal) LoadSignedPreKey(context.Context, uint32) (*record.SignedPreKey, error) {
	return nil, nil
}

// LoadSignedPreKeys implements store.SignedPreKey.
func (p *phoneSignal) LoadSignedPreKeys(context.Context) ([]*record.SignedPreKey, error) {
	return nil, nil
}

// StoreSignedPreKey implements store.SignedPreKey.
func (p *phoneSignal) StoreSignedPreKey(context.Context, uint32, *record.SignedPreKey) error {
	return nil
}

// ContainsSignedPreKey implements store.SignedPreKey.
func (p *phoneSignal) ContainsSignedPreKey(context.Context, uint32) (bool, error) { return false, nil }

// RemoveSignedPreKey implements store.SignedPreKey.
func (p *phoneSignal) RemoveSignedPreKey(context.Context, uint32) error { return nil }
