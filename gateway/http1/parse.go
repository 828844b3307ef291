package http1

import (
	"bytes"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/net/http/httpguts"
)

// maxHeaderLines bounds the header lines of a request the lean path serves; a longer header goes
// to net/http (which enforces the server's MaxHeaderBytes).
const maxHeaderLines = 64

// head is a parsed request head: what the lean path needs to build an *http.Request. Its header
// strings are reused from the previous head read into the same state when the bytes are the
// same (API clients send the same header lines on every request), and its target comes from
// targets, so a repeated request allocates nothing.
type head struct {
	target *target // the request-target and its URL
	host   string  // the Host header's value
	fields []field // the header lines but Host, in order
}

// field is one header line.
type field struct {
	name  string   // canonical (textproto.CanonicalMIMEHeaderKey)
	value string   // trimmed of surrounding blanks
	vs    []string // []string{value}, reused as the Header's value when the name occurs once
}

// target is a request-target as sent (origin-form) and its URL (url.ParseRequestURI).
type target struct {
	raw string
	url url.URL
}

// targetCache holds the parsed request-targets: the API's polled paths are few (two per
// session), so each is parsed once rather than on every request, and the pollers' requests on
// one connection may be for different sessions' paths. It holds at most maxTargets, then starts
// over.
type targetCache struct {
	mu sync.RWMutex
	m  map[string]*target
}

const maxTargets = 1 << 14

var targets = &targetCache{m: map[string]*target{}}

// get returns the parsed target b; false if url.ParseRequestURI refuses it.
func (c *targetCache) get(b []byte) (*target, bool) {
	c.mu.RLock()
	t := c.m[string(b)]
	c.mu.RUnlock()
	if t != nil {
		return t, true
	}
	raw := string(b)
	u, err := url.ParseRequestURI(raw)
	if err != nil {
		return nil, false
	}
	t = &target{raw: raw, url: *u}
	c.mu.Lock()
	if len(c.m) >= maxTargets {
		clear(c.m)
	}
	c.m[raw] = t
	c.mu.Unlock()
	return t, true
}

// parseHead reads the request head at the start of b, which holds the whole head (it ends with
// the first "\r\n\r\n" in b). It returns ok only for a request the lean path serves and net/http
// would read the same way: "GET <origin-form target> HTTP/1.1", every line ending in CRLF, valid
// header names and values, exactly one valid Host, and no header that changes how the request or
// the connection is read (a body's Content-Length or Transfer-Encoding, Expect, Connection,
// Upgrade, Pragma, Trailer, TE). Anything else (ok == false) goes to net/http untouched, which
// answers it or its error exactly as it always does. prev is the head read before into the same
// state (or nil); parseHead fills h, reusing prev's strings where the bytes match.
func parseHead(b []byte, prev, h *head) (ok bool) {
	end := bytes.Index(b, crlfcrlf)
	if end < 0 {
		return false
	}
	b = b[:end+2] // every line with its CRLF, without the blank line
	line, rest, _ := bytes.Cut(b, crlf)
	raw, ok := requestTarget(line)
	if !ok {
		return false
	}
	if h.target, ok = targets.get(raw); !ok {
		return false
	}
	h.host = ""
	h.fields = h.fields[:0]
	hosts := 0
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, crlf)
		if len(h.fields) == maxHeaderLines {
			return false
		}
		name, value, found := bytes.Cut(line, colon)
		if !found || !validName(name) {
			return false // also an obs-fold line (it starts with a blank) and a bare LF inside
		}
		value = bytes.Trim(value, " \t") // the blanks around a value, as net/textproto drops them
		if !httpguts.ValidHeaderFieldValue(unsafeString(value)) {
			return false
		}
		key := canonical(name)
		switch key {
		case "Host":
			hosts++
			if hosts > 1 {
				return false
			}
			h.host = reuse(prevHost(prev), value)
			continue
		case "Content-Length", "Transfer-Encoding", "Expect", "Connection", "Upgrade", "Pragma", "Trailer", "Te":
			return false
		}
		i := len(h.fields)
		var pf *field
		if prev != nil && i < len(prev.fields) && prev.fields[i].name == key {
			pf = &prev.fields[i]
		}
		f := field{name: key}
		if pf != nil && pf.value == string(value) {
			f.value, f.vs = pf.value, pf.vs
			f.vs[0] = f.value // a handler may have written into the Header it was given
		} else {
			f.value = string(value)
			f.vs = []string{f.value}
		}
		h.fields = append(h.fields, f)
	}
	if hosts != 1 || !httpguts.ValidHostHeader(h.host) {
		return false
	}
	return true
}

var (
	crlf     = []byte("\r\n")
	crlfcrlf = []byte("\r\n\r\n")
	colon    = []byte(":")
	get11    = []byte(" HTTP/1.1")
)

// requestTarget returns the target of "GET <target> HTTP/1.1" when it is in origin-form and
// holds only visible ASCII; anything else is for net/http.
func requestTarget(line []byte) ([]byte, bool) {
	rest, ok := bytes.CutPrefix(line, []byte("GET "))
	if !ok {
		return nil, false
	}
	target, ok := bytes.CutSuffix(rest, get11)
	if !ok || len(target) == 0 || target[0] != '/' {
		return nil, false
	}
	for _, c := range target {
		if c <= ' ' || c >= 0x7f {
			return nil, false
		}
	}
	return target, true
}

// validName reports a header name net/textproto reads as a name: a token, no blanks.
func validName(b []byte) bool {
	return len(b) > 0 && httpguts.ValidHeaderFieldName(unsafeString(b))
}

// canonical returns the canonical form of a header name (a valid token): from a table of the
// names API clients send, without allocating, or textproto's.
func canonical(name []byte) string {
	if k, ok := commonKeys[string(name)]; ok {
		return k
	}
	return textproto.CanonicalMIMEHeaderKey(string(name))
}

// commonKeys maps the spellings clients use of the common header names to their canonical form.
var commonKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{
		"Accept", "Accept-Encoding", "Accept-Language", "Authorization", "Cache-Control",
		"Content-Type", "Cookie", "Host", "If-Modified-Since", "If-None-Match", "Origin",
		"Referer", "User-Agent", "X-Forwarded-For", "X-Forwarded-Proto", "X-Request-Id",
		"Traceparent", "Tracestate", "Content-Length", "Transfer-Encoding", "Expect",
		"Connection", "Upgrade", "Pragma", "Trailer", "Te", "Keep-Alive", "Idempotency-Key",
	} {
		m[k] = k
		m[strings.ToLower(k)] = k
	}
	return m
}()

// unsafeString views b as a string for a call that does not keep it.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

func prevHost(prev *head) string {
	if prev == nil {
		return ""
	}
	return prev.host
}

// reuse returns old when it spells b, else a new string of b.
func reuse(old string, b []byte) string {
	if old == string(b) {
		return old
	}
	return string(b)
}

// header fills hd (cleared) with h's fields, as net/textproto would: repeated names keep their
// values in order.
func (h *head) header(hd http.Header) {
	clear(hd)
	for i := range h.fields {
		f := &h.fields[i]
		if vs, ok := hd[f.name]; ok {
			hd[f.name] = append(vs[:len(vs):len(vs)], f.value)
			continue
		}
		hd[f.name] = f.vs[:1:1]
	}
}
