package fakewa

import (
	"testing"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/socket"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
)

// The seed corpora live in testdata/fuzz/<FuzzName>; `go test` replays them on every run.

func FuzzFrameDecoder(f *testing.F) {
	f.Add(withHeader(frame([]byte("hello"))), 3)
	f.Add(withHeader([]byte{0xff, 0xff, 0xff}), 1)
	f.Add([]byte("WA"), 1)
	f.Fuzz(func(t *testing.T, stream []byte, chunk int) {
		const max = 1024
		if chunk <= 0 || chunk > len(stream) {
			chunk = len(stream) + 1
		}
		d := newFrameDecoder(max)
		for i := 0; i < len(stream); i += chunk {
			frames, err := d.feed(stream[i:min(i+chunk, len(stream))])
			for _, fr := range frames {
				if len(fr) > max {
					t.Fatalf("frame of %d bytes passed a %d-byte limit", len(fr), max)
				}
			}
			if err != nil {
				return
			}
			if len(d.buf) > max+frameLengthSize {
				t.Fatalf("decoder buffers %d bytes", len(d.buf))
			}
		}
	})
}

func FuzzHandshakeClientHello(f *testing.F) {
	f.Add(clientHello())
	f.Add([]byte{0x12, 0x22, 0x0a, 0x20})
	static := keys.NewKeyPair()
	f.Fuzz(func(t *testing.T, data []byte) {
		hs := newServerHandshake(socket.WAConnHeader, static, []byte("chain"))
		if out, err := hs.hello(data); err == nil && len(out) == 0 {
			t.Fatal("accepted hello without a server hello to send")
		}
	})
}

func FuzzHandshakeClientFinish(f *testing.F) {
	f.Add([]byte{0x22, 0x04, 0x0a, 0x00, 0x12, 0x00})
	f.Add([]byte("not protobuf"))
	static := keys.NewKeyPair()
	hello := clientHello()
	f.Fuzz(func(t *testing.T, data []byte) {
		hs := newServerHandshake(socket.WAConnHeader, static, []byte("chain"))
		if _, err := hs.hello(hello); err != nil {
			t.Fatal(err)
		}
		if _, err := hs.finish(data); err == nil {
			t.Fatal("a finish not encrypted for this handshake was accepted")
		}
	})
}

func FuzzDecodeNode(f *testing.F) {
	for _, n := range []waBinary.Node{
		{Tag: "iq", Attrs: waBinary.Attrs{"id": "1", "type": "get", "xmlns": "w:p", "to": types.ServerJID}},
		{Tag: "message", Attrs: waBinary.Attrs{"id": "ABC", "to": types.NewJID("1234", types.DefaultUserServer)},
			Content: []waBinary.Node{{Tag: "enc", Content: []byte{1, 2, 3}}}},
	} {
		data, _ := waBinary.Marshal(n)
		f.Add(data)
	}
	f.Add([]byte{2, 0x78, 0x9c})
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := decodeNode(data, 1<<16)
		if err == nil && n == nil {
			t.Fatal("nil node without error")
		}
	})
}

func FuzzParseQR(f *testing.F) {
	f.Add("2@abc," + b64(32) + "," + b64(32) + "," + b64(32))
	f.Add("https://wa.me/settings/linked_devices#2@abc," + b64(32) + "," + b64(32) + "," + b64(32) + ",1")
	f.Fuzz(func(t *testing.T, s string) {
		q, err := ParseQR(s)
		if err == nil && (q.Ref == "" || len(q.AdvSecret) == 0) {
			t.Fatalf("accepted %q with empty fields", s)
		}
	})
}
