package fakewa

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"

	"go.mau.fi/libsignal/ecc"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
)

// contactKeys derives the Signal keys of users the server knows nothing about (message
// recipients) from a per-server secret: stateless, so any number of recipients costs no memory.
type contactKeys struct {
	secret [32]byte
}

func newContactKeys() *contactKeys {
	k := &contactKeys{}
	rand.Read(k.secret[:])
	return k
}

func (k *contactKeys) derive(purpose, user string) [32]byte {
	h := sha256.New()
	h.Write(k.secret[:])
	h.Write([]byte(purpose))
	h.Write([]byte{0})
	h.Write([]byte(user))
	var priv [32]byte
	copy(priv[:], h.Sum(nil))
	priv[0] &= 248
	priv[31] &= 127
	priv[31] |= 64
	return priv
}

// accountForUser returns the account whose phone number or LID is user, if any.
func (s *Server) accountForUser(user string) *account {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.accounts[user]; ok {
		return a
	}
	return s.byLID[user]
}

// bundleNode builds the prekey bundle of one device (go.mau.fi/libsignal accepts it and produces
// real pkmsg ciphertext). An account's phone (device 0) uses the account key; anyone else gets
// keys derived from their user ID.
func (s *Server) bundleNode(jidAttr any, jid types.JID) waBinary.Node {
	var identity *keys.KeyPair
	if a := s.accountForUser(jid.User); a != nil && jid.Device == 0 {
		identity = a.key
	} else {
		identity = keys.NewKeyPairFromPrivateKey(s.contacts.derive("identity", jid.SignalAddress().String()))
	}
	spkPair := keys.NewKeyPairFromPrivateKey(s.contacts.derive("signed-prekey", jid.SignalAddress().String()))
	spk := &keys.PreKey{KeyPair: *spkPair, KeyID: 1}
	spk.Signature = identity.Sign(spkPair)
	otk := keys.NewPreKey(2 + uint32(s.idCounter.Add(1)%(1<<23)))

	regSeed := s.contacts.derive("registration", jid.User)
	regID := make([]byte, 4)
	binary.BigEndian.PutUint32(regID, 1+binary.BigEndian.Uint32(regSeed[:4])%16380)
	return waBinary.Node{Tag: "user", Attrs: waBinary.Attrs{"jid": jidAttr}, Content: []waBinary.Node{
		{Tag: "registration", Content: regID},
		{Tag: "type", Content: []byte{ecc.DjbType}},
		{Tag: "identity", Content: identity.Pub[:]},
		preKeyNode("skey", spk),
		preKeyNode("key", otk),
	}}
}

func preKeyNode(tag string, k *keys.PreKey) waBinary.Node {
	var id [4]byte
	binary.BigEndian.PutUint32(id[:], k.KeyID)
	content := []waBinary.Node{
		{Tag: "id", Content: id[1:]},
		{Tag: "value", Content: k.Pub[:]},
	}
	if k.Signature != nil {
		content = append(content, waBinary.Node{Tag: "signature", Content: k.Signature[:]})
	}
	return waBinary.Node{Tag: tag, Content: content}
}
