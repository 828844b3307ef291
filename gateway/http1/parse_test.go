package http1

import (
	"bufio"
	"bytes"
	"net/http"
	"net/textproto"
	"reflect"
	"testing"

	"golang.org/x/net/http/httpguts"
)

const pollHead = "GET /sessions/shop_1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAuthorization: Bearer secret\r\nUser-Agent: Go-http-client/1.1\r\nAccept-Encoding: gzip\r\n\r\n"

// The lean path takes only plain GETs; every other head goes to net/http untouched.
func TestParseHeadTakesPlainGETsAndLeavesTheRestToNetHTTP(t *testing.T) {
	for _, tc := range []struct {
		name string
		head string
		lean bool
	}{
		{"a status poll", pollHead, true},
		{"a query", "GET /sessions?after=a&limit=10 HTTP/1.1\r\nHost: x\r\n\r\n", true},
		{"lower-case names", "GET / HTTP/1.1\r\nhost: x\r\nauthorization: Bearer t\r\n\r\n", true},
		{"a repeated header", "GET / HTTP/1.1\r\nHost: x\r\nAccept: a\r\nAccept: b\r\n\r\n", true},
		{"blanks around a value", "GET / HTTP/1.1\r\nHost: x\r\nAccept: \t a b \t\r\n\r\n", true},
		{"an empty value", "GET / HTTP/1.1\r\nHost: x\r\nAccept:\r\n\r\n", true},
		{"POST", "POST /sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", false},
		{"HEAD", "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"DELETE", "DELETE /sessions/a HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"HTTP/1.0", "GET / HTTP/1.0\r\nHost: x\r\n\r\n", false},
		{"no Host", "GET / HTTP/1.1\r\nAccept: a\r\n\r\n", false},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", false},
		{"a bad Host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", false},
		{"absolute-form", "GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"asterisk", "GET * HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"a GET with a body", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\na", false},
		{"a GET with Content-Length 0", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", false},
		{"chunked", "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false},
		{"Connection: close", "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false},
		{"Expect", "GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n", false},
		{"Upgrade", "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n", false},
		{"Pragma", "GET / HTTP/1.1\r\nHost: x\r\nPragma: no-cache\r\n\r\n", false},
		{"an obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nAccept: a\r\n b\r\n\r\n", false},
		{"a blank before the colon", "GET / HTTP/1.1\r\nHost: x\r\nAccept : a\r\n\r\n", false},
		{"a bare LF", "GET / HTTP/1.1\nHost: x\n\n", false},
		{"a bare LF inside", "GET / HTTP/1.1\r\nHost: x\nAccept: a\r\n\r\n", false},
		{"a control byte in a value", "GET / HTTP/1.1\r\nHost: x\r\nAccept: a\x01\r\n\r\n", false},
		{"a percent-encoded path", "GET /a%20b HTTP/1.1\r\nHost: x\r\n\r\n", true},
		{"a bad escape", "GET /a%zz HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"a non-ASCII target", "GET /\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"an incomplete head", "GET / HTTP/1.1\r\nHost: x\r\n", false},
		{"two spaces", "GET  / HTTP/1.1\r\nHost: x\r\n\r\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h head
			if got := parseHead([]byte(tc.head), nil, &h); got != tc.lean {
				t.Fatalf("parseHead = %v, want %v", got, tc.lean)
			}
			if tc.lean {
				assertSameAsNetHTTP(t, []byte(tc.head), &h)
			}
		})
	}
}

// A poller's repeated head is read without allocating: its strings come from the previous one.
func TestARepeatedHeadAllocatesNothing(t *testing.T) {
	var prev, cur head
	b := []byte(pollHead)
	if !parseHead(b, nil, &prev) {
		t.Fatal("the poll head is not lean")
	}
	hd := http.Header{}
	allocs := testing.AllocsPerRun(100, func() {
		if !parseHead(b, &prev, &cur) {
			t.Fatal("the poll head is not lean")
		}
		cur.header(hd)
		prev, cur = cur, prev
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per repeated head, want 0", allocs)
	}
	if got := hd.Get("Authorization"); got != "Bearer secret" {
		t.Fatalf("Authorization = %q", got)
	}
}

// A handler that wrote into the Header it was given does not change the next request's values.
func TestAHandlersWriteIntoTheHeaderDoesNotLeakIntoTheNextRequest(t *testing.T) {
	var prev, cur head
	b := []byte(pollHead)
	parseHead(b, nil, &prev)
	hd := http.Header{}
	prev.header(hd)
	hd["Authorization"][0] = "Bearer changed"
	parseHead(b, &prev, &cur)
	cur.header(hd)
	if got := hd.Get("Authorization"); got != "Bearer secret" {
		t.Fatalf("Authorization = %q after a handler changed the previous one", got)
	}
}

// FuzzParseHeadReadsAsNetHTTPDoes: whatever parseHead takes, net/http's server would have read
// to the same request (method, URL, Host, header, no body) and accepted (valid Host and header).
func FuzzParseHeadReadsAsNetHTTPDoes(f *testing.F) {
	for _, s := range []string{
		pollHead,
		"GET /a?b=c HTTP/1.1\r\nHost: x\r\nX-Y: z\r\n\r\n",
		"GET //x/../y;p?q#f HTTP/1.1\r\nhost: x:1\r\naccept: a\r\nAccept: b\r\n\r\n",
		"GET /%41 HTTP/1.1\r\nHost: [::1]:80\r\nCookie: a=b\r\n\r\n",
		"GET /? HTTP/1.1\r\nHost: x\r\nX:\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var h head
		if !parseHead(b, nil, &h) {
			return
		}
		assertSameAsNetHTTP(t, b, &h)
		// Read again with itself as the previous head: the same request.
		var again head
		if !parseHead(b, &h, &again) || !reflect.DeepEqual(again, h) {
			t.Fatalf("reading %q again with its own head as the previous one differs", b)
		}
	})
}

// assertSameAsNetHTTP reads b with http.ReadRequest, applies the checks net/http's server makes
// before serving, and compares the request with what parseHead read into h.
func assertSameAsNetHTTP(t *testing.T, b []byte, h *head) {
	t.Helper()
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(b)))
	if err != nil {
		t.Fatalf("parseHead took %q, net/http refuses it: %v", b, err)
	}
	// http.ReadRequest drops the Host lines the server checks; read them as it does.
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(b)))
	_, _ = tp.ReadLine()
	mime, err := tp.ReadMIMEHeader()
	if err != nil {
		t.Fatalf("parseHead took %q, net/textproto refuses its header: %v", b, err)
	}
	hosts := mime["Host"]
	if len(hosts) != 1 || !httpguts.ValidHostHeader(hosts[0]) {
		t.Fatalf("parseHead took %q, net/http's server answers 400 (Host %q)", b, hosts)
	}
	for k, vs := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			t.Fatalf("parseHead took %q, net/http's server refuses header name %q", b, k)
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				t.Fatalf("parseHead took %q, net/http's server refuses header value %q", b, v)
			}
		}
	}
	if req.Method != http.MethodGet || req.Proto != "HTTP/1.1" || req.Close || req.ContentLength != 0 ||
		req.Body != http.NoBody || len(req.TransferEncoding) != 0 {
		t.Fatalf("parseHead took %q, net/http reads %s %s close=%v length=%d body=%T te=%q", b,
			req.Method, req.Proto, req.Close, req.ContentLength, req.Body, req.TransferEncoding)
	}
	if req.RequestURI != h.target.raw || !reflect.DeepEqual(*req.URL, h.target.url) || req.Host != h.host {
		t.Fatalf("parseHead read %q as %q %+v host %q, net/http as %q %+v host %q", b,
			h.target.raw, h.target.url, h.host, req.RequestURI, *req.URL, req.Host)
	}
	got := http.Header{}
	h.header(got)
	if !reflect.DeepEqual(got, req.Header) {
		t.Fatalf("parseHead read the header of %q as %v, net/http as %v", b, got, req.Header)
	}
}
