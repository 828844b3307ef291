package js

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"sort"
	"strings"

	"github.com/dop251/goja"
)

// hashes are k6/crypto's algorithms this runtime provides (md4 and ripemd160, deprecated in Go's
// libraries, are not).
var hashes = map[string]func() hash.Hash{
	"md5": md5.New, "sha1": sha1.New, "sha256": sha256.New, "sha384": sha512.New384,
	"sha512": sha512.New, "sha512_224": sha512.New512_224, "sha512_256": sha512.New512_256,
}

// moduleCrypto is k6/crypto: the hash functions by name (md5(input, encoding), ...), hmac,
// createHash / createHMAC (update, digest) and randomBytes. Inputs are strings or ArrayBuffers;
// digests are "hex", "base64", "base64url", "base64rawurl" or "binary" (an ArrayBuffer).
func (vu *VU) moduleCrypto() goja.Value {
	o := vu.RT.NewObject()
	algorithm := func(v goja.Value) func() hash.Hash {
		name := strings.ReplaceAll(strings.ToLower(v.String()), "-", "_")
		h, ok := hashes[name]
		if !ok {
			names := make([]string, 0, len(hashes))
			for n := range hashes {
				names = append(names, n)
			}
			sort.Strings(names)
			vu.Throw("k6/crypto: hash algorithm %q is not supported by wagate's k6 runtime (%s)", v.String(), strings.Join(names, ", "))
		}
		return h
	}
	for name := range hashes {
		must(o.Set(name, func(call goja.FunctionCall) goja.Value {
			h := hashes[name]()
			h.Write(vu.bytesOf(call.Argument(0)))
			return vu.digest(h.Sum(nil), call.Argument(1))
		}))
	}
	for _, name := range []string{"md4", "ripemd160"} {
		must(o.Set(name, vu.unsupported("k6/crypto."+name)))
	}
	must(o.Set("hmac", func(call goja.FunctionCall) goja.Value {
		h := hmac.New(algorithm(call.Argument(0)), vu.bytesOf(call.Argument(1)))
		h.Write(vu.bytesOf(call.Argument(2)))
		return vu.digest(h.Sum(nil), call.Argument(3))
	}))
	must(o.Set("createHash", func(call goja.FunctionCall) goja.Value {
		return vu.hasher(algorithm(call.Argument(0))())
	}))
	must(o.Set("createHMAC", func(call goja.FunctionCall) goja.Value {
		return vu.hasher(hmac.New(algorithm(call.Argument(0)), vu.bytesOf(call.Argument(1))))
	}))
	must(o.Set("randomBytes", func(n int64) goja.Value {
		if n < 1 {
			vu.Throw("randomBytes: invalid size %d", n)
		}
		b := make([]byte, n)
		_, _ = rand.Read(b)
		return vu.RT.ToValue(vu.RT.NewArrayBuffer(b))
	}))
	return o
}

// hasher is the object createHash and createHMAC return: update(input) and digest(encoding).
func (vu *VU) hasher(h hash.Hash) goja.Value {
	o := vu.RT.NewObject()
	must(o.Set("update", func(call goja.FunctionCall) goja.Value {
		h.Write(vu.bytesOf(call.Argument(0)))
		return o
	}))
	must(o.Set("digest", func(call goja.FunctionCall) goja.Value {
		return vu.digest(h.Sum(nil), call.Argument(0))
	}))
	return o
}

// digest encodes a sum as k6/crypto's output encoding names it.
func (vu *VU) digest(sum []byte, encoding goja.Value) goja.Value {
	switch e := encoding.String(); {
	case goja.IsUndefined(encoding), e == "binary":
		return vu.RT.ToValue(vu.RT.NewArrayBuffer(sum))
	case e == "hex":
		return vu.RT.ToValue(hex.EncodeToString(sum))
	case e == "base64":
		return vu.RT.ToValue(base64.StdEncoding.EncodeToString(sum))
	case e == "base64url":
		return vu.RT.ToValue(base64.URLEncoding.EncodeToString(sum))
	case e == "base64rawurl":
		return vu.RT.ToValue(base64.RawURLEncoding.EncodeToString(sum))
	default:
		vu.Throw("k6/crypto: unknown output encoding %q (hex, base64, base64url, base64rawurl, binary)", e)
		return nil
	}
}
