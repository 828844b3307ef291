package api

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// The status read (GET /sessions/{id}) is the endpoint the Laravel app polls: with many pollers
// it is most of the API's traffic, and the QR read (GET /sessions/{id}/qr) is what a pairing
// page polls. encoding/json spends most of those answers' time on reflection and on time.Time's
// MarshalJSON (whose output it re-scans); appendSession and appendQR write the same bytes
// directly into a pooled buffer. TestSessionEncodingMatchesEncodingJSON and
// TestQREncodingMatchesEncodingJSON pin the equivalence.

// bufPool holds answer buffers (each at most maxPooledBuf bytes is kept).
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

const maxPooledBuf = 4 << 10

// writeSession writes v as writeJSON(w, status, v) would, without reflection.
func writeSession(w http.ResponseWriter, status int, v *sessionJSON) {
	bp := bufPool.Get().(*[]byte)
	b := appendSession((*bp)[:0], v)
	b = append(b, '\n') // json.Encoder ends every value with a newline
	h := w.Header()
	h["Content-Type"] = contentTypeJSON
	h["X-Content-Type-Options"] = noSniff
	w.WriteHeader(status)
	_, _ = w.Write(b)
	if cap(b) <= maxPooledBuf {
		*bp = b
		bufPool.Put(bp)
	}
}

// writeQR writes v as writeJSON(w, status, v) would, without reflection.
func writeQR(w http.ResponseWriter, status int, v *qrJSON) {
	bp := bufPool.Get().(*[]byte)
	b := appendQR((*bp)[:0], v)
	b = append(b, '\n')
	h := w.Header()
	h["Content-Type"] = contentTypeJSON
	h["X-Content-Type-Options"] = noSniff
	w.WriteHeader(status)
	_, _ = w.Write(b)
	if cap(b) <= maxPooledBuf {
		*bp = b
		bufPool.Put(bp)
	}
}

// Header values shared by every answer that sets them (never modified).
var (
	contentTypeJSON = []string{"application/json"}
	noSniff         = []string{"nosniff"}
	noStore         = []string{"no-store"}
)

// appendQR appends v's JSON encoding, byte for byte what encoding/json produces.
func appendQR(b []byte, v *qrJSON) []byte {
	b = append(b, `{"session_id":`...)
	b = appendJSONString(b, v.SessionID)
	b = append(b, `,"qr":`...)
	b = appendJSONString(b, v.QR)
	b = append(b, `,"expires_at":`...)
	b = appendJSONTime(b, v.ExpiresAt)
	return append(b, '}')
}

// appendSession appends v's JSON encoding, byte for byte what encoding/json produces.
func appendSession(b []byte, v *sessionJSON) []byte {
	b = append(b, `{"session_id":`...)
	b = appendJSONString(b, v.SessionID)
	b = append(b, `,"status":`...)
	b = appendJSONString(b, string(v.Status))
	if v.Active != nil {
		b = append(b, `,"active":`...)
		b = strconv.AppendBool(b, *v.Active)
	}
	if v.ActiveError != "" {
		b = append(b, `,"active_error":`...)
		b = appendJSONString(b, v.ActiveError)
	}
	b = append(b, `,"connected":`...)
	b = strconv.AppendBool(b, v.Connected)
	b = append(b, `,"paired":`...)
	b = strconv.AppendBool(b, v.Paired)
	b = append(b, `,"has_qr":`...)
	b = strconv.AppendBool(b, v.HasQR)
	if !v.QRExpiresAt.IsZero() {
		b = append(b, `,"qr_expires_at":`...)
		b = appendJSONTime(b, v.QRExpiresAt)
	}
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, v.Version, 10)
	b = append(b, `,"updated_at":`...)
	b = appendJSONTime(b, v.UpdatedAt)
	return append(b, '}')
}

// appendJSONTime appends t as time.Time's MarshalJSON does (RFC 3339 with nanoseconds, quoted);
// a year outside [0,9999], which MarshalJSON refuses, falls back to encoding/json.
func appendJSONTime(b []byte, t time.Time) []byte {
	if y := t.Year(); y < 0 || y > 9999 {
		return appendMarshalled(b, t)
	}
	b = append(b, '"')
	if t.Location() == time.UTC {
		b = appendUTC(b, t)
	} else {
		b = t.AppendFormat(b, time.RFC3339Nano)
	}
	return append(b, '"')
}

// appendUTC appends a UTC time of a year in [0,9999] as t.AppendFormat(b, time.RFC3339Nano)
// does (fraction without trailing zeros, "Z"), digit by digit: the answers' timestamps are
// always UTC, and the generic formatter spends most of a status read's formatting time.
func appendUTC(b []byte, t time.Time) []byte {
	year, month, day := t.Date()
	hour, minute, second := t.Clock()
	b = append(b, byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-')
	b = append2(b, int(month))
	b = append(b, '-')
	b = append2(b, day)
	b = append(b, 'T')
	b = append2(b, hour)
	b = append(b, ':')
	b = append2(b, minute)
	b = append(b, ':')
	b = append2(b, second)
	if ns := t.Nanosecond(); ns != 0 {
		var frac [10]byte
		frac[0] = '.'
		for i := 9; i >= 1; i-- {
			frac[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := 10
		for frac[n-1] == '0' {
			n--
		}
		b = append(b, frac[:n]...)
	}
	return append(b, 'Z')
}

// append2 appends v in [0,99] as two digits.
func append2(b []byte, v int) []byte { return append(b, byte('0'+v/10), byte('0'+v%10)) }

// appendJSONString appends s quoted. Plain printable ASCII without '"', '\\' or the characters
// encoding/json escapes for HTML (<, >, &) is copied as is; anything else goes through
// encoding/json so the escaping is exactly its own.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return appendMarshalled(b, s)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func appendMarshalled(b []byte, v any) []byte {
	out, err := json.Marshal(v)
	if err != nil {
		return append(b, "null"...)
	}
	return append(b, out...)
}
