// Package fakewa is a WhatsApp multi-device server that the real whatsmeow client connects to: a
// fake WhatsApp network for the harness.
//
// It owns the server side of the protocol as whatsmeow speaks it: a WebSocket listener on loopback,
// the server half of the Noise_XX_25519_AESGCM_SHA256 handshake under its own root key and
// certificate chain, one whole frame per WebSocket message, binary XML nodes (whatsmeow's binary
// package), QR pairing refs, the fake phones that scan them (Server.Pair), the requests a logged-in
// client makes (prekey count and upload, passive, keepalive, logout, usync, prekey bundles, message
// acks and receipts), the contacts' phones that write to a device (Server.SendMessage: real Signal
// pkmsg then msg, text, replies, reactions, images and documents whose encrypted files it serves,
// held while the device is offline and delivered again until it sends a receipt or its retry),
// the recipients' delivery and read receipts for the messages a device sends (held the same way
// until the device acks each one, as WhatsApp's offline queue does),
// and the churn the real service causes (network drop, stream replaced, device
// removed, failure at connect, server restart, keepalive silence, an outage of some devices or of
// the whole server: Server.Unreachable, a silence of some devices or of the whole server, sockets
// kept open but nothing read or answered: Server.Silence, sockets closed in the middle of the
// Noise handshake, before the server's hello: Server.CutHandshakes).
//
// Every event the server causes or sees is recorded with its time (Server.Events): the ground
// truth the simulator compares the gateway's and Laravel's view against.
//
// Clients must trust the server's root key (RootKey, Server.RootPublicKey) and dial its address;
// gateway/wadial holds those test-only client settings. whatsmeow's root key is one process-global
// variable, so every server in one process should share one RootKey.
//
// Control: the Go API of Server for in-process use, and ControlHandler, a JSON HTTP API for the
// standalone mode (`simulator fakewa`), with ControlClient as its Go client.
package fakewa
