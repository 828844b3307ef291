package fakewa

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// ErrBadNode is wrapped by every error decoding a client's node.
var ErrBadNode = errors.New("fakewa: bad node")

// decodeNode turns a decrypted frame (flag byte + binary XML, zlib-compressed when flag&2) into a
// node. Decompression is bounded by maxSize, and a decoder panic on hostile input is an error.
func decodeNode(plain []byte, maxSize int) (node *waBinary.Node, err error) {
	if len(plain) == 0 {
		return nil, fmt.Errorf("%w: empty frame", ErrBadNode)
	}
	data := plain[1:]
	if plain[0]&2 != 0 {
		zr, err := zlib.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("%w: zlib: %w", ErrBadNode, err)
		}
		data, err = io.ReadAll(io.LimitReader(zr, int64(maxSize)+1))
		if err != nil {
			return nil, fmt.Errorf("%w: zlib: %w", ErrBadNode, err)
		}
		if len(data) > maxSize {
			return nil, fmt.Errorf("%w: decompressed node over %d bytes", ErrBadNode, maxSize)
		}
	}
	defer func() {
		if r := recover(); r != nil {
			node, err = nil, fmt.Errorf("%w: decoder panic: %v", ErrBadNode, r)
		}
	}()
	node, err = waBinary.Unmarshal(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadNode, err)
	}
	return node, nil
}

// attrString returns a string attribute, or "" when absent or of another type.
func attrString(n *waBinary.Node, key string) string {
	s, _ := n.Attrs[key].(string)
	return s
}

// attrJID returns a JID attribute (the decoder yields types.JID for JID-encoded values).
func attrJID(n *waBinary.Node, key string) (types.JID, bool) {
	switch v := n.Attrs[key].(type) {
	case types.JID:
		return v, true
	case string:
		jid, err := types.ParseJID(v)
		return jid, err == nil
	}
	return types.EmptyJID, false
}

func unixString(t time.Time) string {
	return strconv.FormatInt(t.Unix(), 10)
}

// iqResult is the empty result answering a client's iq.
func iqResult(req *waBinary.Node, content ...waBinary.Node) waBinary.Node {
	n := waBinary.Node{Tag: "iq", Attrs: waBinary.Attrs{
		"id": attrString(req, "id"), "type": "result", "from": types.ServerJID,
	}}
	if len(content) > 0 {
		n.Content = content
	}
	return n
}

func streamError(code, conflictType string) waBinary.Node {
	n := waBinary.Node{Tag: "stream:error", Attrs: waBinary.Attrs{}}
	if code != "" {
		n.Attrs["code"] = code
	}
	if conflictType != "" {
		n.Content = []waBinary.Node{{Tag: "conflict", Attrs: waBinary.Attrs{"type": conflictType}}}
	}
	return n
}
