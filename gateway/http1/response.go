package http1

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// bufferBeforeFraming is how much of a body the response holds before it has to choose its
// framing: a handler that finishes within it gets a Content-Length, a longer body without one is
// sent chunked (net/http holds 2 KiB; the API's answers are smaller).
const bufferBeforeFraming = 4 << 10

// flushAt is the size at which a streamed body's bytes go to the connection.
const flushAt = 16 << 10

var buffers = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

func getBuffer() *[]byte { return buffers.Get().(*[]byte) }

func putBuffer(b *[]byte) {
	if cap(*b) > 64<<10 {
		return // a large answer's buffer is not kept for the small ones
	}
	*b = (*b)[:0]
	buffers.Put(b)
}

// response is the lean path's http.ResponseWriter (and http.Flusher), part of a pooled state,
// reset for each request. What the handler writes is held until it returns or the body outgrows
// bufferBeforeFraming, then written with net/http's framing: Date, a sniffed Content-Type when
// none was set, Content-Length when known, chunked otherwise.
type response struct {
	c      *conn
	header http.Header
	keys   []string // scratch for writing the header sorted

	status      int
	wroteHeader bool
	headSent    bool   // the head is in out (or on the wire)
	head        []byte // status line and the handler's header lines, taken at WriteHeader
	hasDate     bool
	hasType     bool
	declared    int64 // the handler's Content-Length, -1 if none
	badLength   bool  // the handler's Content-Length was invalid: the body goes chunked
	written     int64 // body bytes accepted
	chunked     bool
	closeAfter  bool
	err         error

	pend *[]byte // body held before the framing is chosen
	out  *[]byte // bytes for the connection
}

func (w *response) reset(c *conn) {
	w.c = c
	clear(w.header)
	w.status, w.wroteHeader, w.headSent = 0, false, false
	w.head = w.head[:0]
	w.hasDate, w.hasType = false, false
	w.declared, w.written, w.badLength = -1, 0, false
	w.chunked, w.closeAfter, w.err = false, false, nil
}

func (w *response) Header() http.Header { return w.header }

// WriteHeader takes the status and a snapshot of the header, as net/http does (later changes to
// the header map are not sent). 1xx statuses but 101 are sent at once as interim answers.
func (w *response) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if w.wroteHeader {
		return
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		w.ensureOut()
		*w.out = w.appendStatusAndHeader(*w.out, code)
		*w.out = append(*w.out, "\r\n"...)
		w.flush()
		return
	}
	w.wroteHeader, w.status = true, code
	if cl := w.header.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseUint(cl, 10, 63); err == nil {
			w.declared = int64(n)
		} else {
			// net/http logs it, drops it and sends the body chunked; so does the lean path.
			w.c.srv.logf("http: invalid Content-Length of %q", cl)
			w.header.Del("Content-Length")
			w.badLength = true
		}
	}
	w.head = w.appendStatusAndHeader(w.head[:0], code)
	_, w.hasDate = w.header["Date"]
	_, w.hasType = w.header["Content-Type"]
	if httpguts.HeaderValuesContainsToken(w.header["Connection"], "close") {
		w.closeAfter = true
	}
}

// appendStatusAndHeader appends the status line and the handler's header lines, sorted by name,
// with net/http's sanitizing: invalid names are dropped, newlines in values become spaces; the
// framing headers are the response's own.
func (w *response) appendStatusAndHeader(b []byte, code int) []byte {
	if code == http.StatusOK {
		b = append(b, "HTTP/1.1 200 OK\r\n"...)
	} else {
		b = append(b, "HTTP/1.1 "...)
		b = strconv.AppendInt(b, int64(code), 10)
		b = append(b, ' ')
		if text := http.StatusText(code); text != "" {
			b = append(b, text...)
		} else {
			b = append(b, "status code "...)
			b = strconv.AppendInt(b, int64(code), 10)
		}
		b = append(b, "\r\n"...)
	}
	w.keys = w.keys[:0]
	for k := range w.header {
		if k == "Transfer-Encoding" || (k == "Content-Length" && !bodyAllowed(code)) {
			continue
		}
		w.keys = append(w.keys, k)
	}
	slices.Sort(w.keys)
	for _, k := range w.keys {
		if !httpguts.ValidHeaderFieldName(k) {
			continue
		}
		for _, v := range w.header[k] {
			b = append(b, k...)
			b = append(b, ": "...)
			b = appendValue(b, v)
			b = append(b, "\r\n"...)
		}
	}
	return b
}

// appendValue appends a header value with CR and LF replaced by spaces and surrounding blanks
// trimmed, as net/http writes it.
func appendValue(b []byte, v string) []byte {
	v = strings.Trim(v, " \t")
	if !strings.ContainsAny(v, "\r\n") {
		return append(b, v...)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		b = append(b, c)
	}
	return b
}

func (w *response) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.declared >= 0 && w.written+int64(len(p)) > w.declared {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if !w.headSent {
		if w.pend == nil {
			w.pend = getBuffer()
		}
		*w.pend = append(*w.pend, p...)
		if len(*w.pend) > bufferBeforeFraming {
			w.sendHead(false)
		}
		return len(p), w.err
	}
	w.appendBody(p)
	return len(p), w.err
}

func (w *response) ensureOut() {
	if w.out == nil {
		w.out = getBuffer()
	}
}

// sendHead chooses the framing and puts the head and the held body in out. final: the handler
// returned, so a body without a declared length has the length held.
func (w *response) sendHead(final bool) {
	w.ensureOut()
	b := append(*w.out, w.head...)
	var pend []byte
	if w.pend != nil {
		pend = *w.pend
	}
	if !w.hasDate {
		b = append(b, "Date: "...)
		b = appendDate(b, time.Now())
		b = append(b, "\r\n"...)
	}
	allowed := bodyAllowed(w.status)
	if allowed && !w.hasType && len(pend) > 0 {
		b = append(b, "Content-Type: "...)
		b = append(b, http.DetectContentType(pend)...)
		b = append(b, "\r\n"...)
	}
	switch {
	case !allowed:
	case w.declared >= 0:
		// the handler's Content-Length is among its header lines
	case final && !w.badLength:
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(pend)), 10)
		b = append(b, "\r\n"...)
	default:
		w.chunked = true
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	}
	if w.closeAfter {
		if !httpguts.HeaderValuesContainsToken(w.header["Connection"], "close") {
			b = append(b, "Connection: close\r\n"...)
		}
	}
	b = append(b, "\r\n"...)
	*w.out = b
	w.headSent = true
	if len(pend) > 0 {
		w.appendBody(pend)
	}
	if w.pend != nil {
		putBuffer(w.pend)
		w.pend = nil
	}
}

// appendBody puts body bytes in out, in a chunk when chunked, and writes out once it is large.
func (w *response) appendBody(p []byte) {
	if len(p) == 0 {
		return
	}
	b := *w.out
	if w.chunked {
		b = strconv.AppendInt(b, int64(len(p)), 16)
		b = append(b, "\r\n"...)
		b = append(b, p...)
		b = append(b, "\r\n"...)
	} else {
		b = append(b, p...)
	}
	*w.out = b
	if len(b) >= flushAt {
		w.flush()
	}
}

// flush writes out to the connection.
func (w *response) flush() {
	if w.out == nil || len(*w.out) == 0 {
		return
	}
	if w.err == nil {
		_, w.err = w.c.rwc.Write(*w.out)
	}
	*w.out = (*w.out)[:0]
}

// Flush sends the head and what the body holds now (chunked when no length was declared), as
// http.Flusher promises.
func (w *response) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headSent {
		w.sendHead(false)
	}
	w.flush()
}

// finish completes the answer after the handler returned and reports whether the connection
// stays open: not after a write error, a body shorter than its declared length, or a
// "Connection: close".
func (w *response) finish() (keepAlive bool) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headSent {
		w.sendHead(true)
	}
	if w.chunked {
		*w.out = append(*w.out, "0\r\n\r\n"...)
	}
	w.flush()
	w.release()
	if w.declared >= 0 && w.written < w.declared && bodyAllowed(w.status) {
		w.closeAfter = true
	}
	keepAlive = w.err == nil && !w.closeAfter
	w.c = nil
	return keepAlive
}

// release returns the buffers to the pool.
func (w *response) release() {
	if w.pend != nil {
		putBuffer(w.pend)
		w.pend = nil
	}
	if w.out != nil {
		putBuffer(w.out)
		w.out = nil
	}
}

// bodyAllowed reports whether a status may carry a body (RFC 9110: not 1xx, 204, 304).
func bodyAllowed(code int) bool {
	return !(code >= 100 && code <= 199 || code == http.StatusNoContent || code == http.StatusNotModified)
}

// dateLine is the Date header's value for one second, formatted once for every answer in it.
type dateLine struct {
	unix int64
	text string
}

var lastDate atomic.Pointer[dateLine]

// appendDate appends now in http.TimeFormat (the Date header's format), formatting it once a
// second.
func appendDate(b []byte, now time.Time) []byte {
	sec := now.Unix()
	d := lastDate.Load()
	if d == nil || d.unix != sec {
		d = &dateLine{unix: sec, text: now.UTC().Format(http.TimeFormat)}
		lastDate.Store(d)
	}
	return append(b, d.text...)
}
