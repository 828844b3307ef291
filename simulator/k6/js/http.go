package js

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dop251/goja"

	"wagate/simulator/k6/options"
	"wagate/simulator/metrics"
)

const defaultUserAgent = "wagate-k6/1 (https://k6.io/)"

// httpClient is one VU's HTTP transport (k6 keeps connections per VU) with byte counters for
// data_sent and data_received.
type httpClient struct {
	transport *http.Transport
	sent      atomic.Int64
	received  atomic.Int64
	// expected decides expected_response and http_req_failed (nil: 200-399).
	expected *expectedStatuses
}

type countingConn struct {
	net.Conn
	c *httpClient
}

func (c countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.c.received.Add(int64(n))
	return n, err
}

func (c countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.c.sent.Add(int64(n))
	return n, err
}

func (vu *VU) httpClient() *httpClient {
	if vu.client != nil {
		return vu.client
	}
	c := &httpClient{}
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	hosts := vu.S.HTTP.Hosts
	c.transport = &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			addr = mapHost(hosts, addr)
			conn, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return countingConn{Conn: conn, c: c}, nil
		},
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: vu.S.HTTP.InsecureSkipTLSVerify}, //nolint:gosec // k6's insecureSkipTLSVerify option
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  false,
	}
	vu.client = c
	return c
}

// mapHost applies k6's hosts option to "host:port": an entry for the host maps it to an address
// (with or without port), an entry for "host:port" maps that exact pair.
func mapHost(hosts map[string]string, addr string) string {
	if len(hosts) == 0 {
		return addr
	}
	if to, ok := hosts[addr]; ok {
		return to
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	to, ok := hosts[host]
	if !ok {
		return addr
	}
	if _, _, err := net.SplitHostPort(to); err == nil {
		return to
	}
	return net.JoinHostPort(to, port)
}

// expectedStatuses is http.expectedStatuses(...): the statuses that count as expected.
type expectedStatuses struct {
	single []int64
	ranges [][2]int64
}

func (e *expectedStatuses) ok(status int) bool {
	if e == nil {
		return status >= 200 && status < 400
	}
	for _, s := range e.single {
		if int64(status) == s {
			return true
		}
	}
	for _, r := range e.ranges {
		if int64(status) >= r[0] && int64(status) <= r[1] {
			return true
		}
	}
	return false
}

// prepared is one request ready to run off the VU's goroutine.
type prepared struct {
	method, url string
	body        []byte
	header      http.Header
	tags        map[string]string // request tags (params.tags), name included
	timeout     time.Duration
	redirects   int64
	respType    string // text, binary, none
	expected    *expectedStatuses
	basicUser   *url.Userinfo
	cookies     []*http.Cookie
}

// hop is one HTTP round trip's outcome (one per redirect).
type hop struct {
	status                                         int
	statusText, proto, url                         string
	header                                         http.Header
	body                                           []byte
	err                                            error
	errCode                                        int
	blocked, lookingUp, connecting, tlsHandshaking time.Duration
	sending, waiting, receiving                    time.Duration
	remoteIP                                       string
	remotePort                                     int
	tlsVersion                                     string
	cookies                                        []*http.Cookie
	reqHeader                                      http.Header
	reqMethod, reqURL                              string
	reqBody                                        []byte
}

func (vu *VU) moduleHTTP() goja.Value {
	rt := vu.RT
	o := rt.NewObject()
	must(o.Set("request", func(call goja.FunctionCall) goja.Value {
		return vu.httpRequest(call.Argument(0).String(), call.Argument(1), call.Argument(2), call.Argument(3))
	}))
	for _, m := range []string{"get", "head"} {
		method := strings.ToUpper(m)
		must(o.Set(m, func(call goja.FunctionCall) goja.Value {
			return vu.httpRequest(method, call.Argument(0), goja.Undefined(), call.Argument(1))
		}))
	}
	for m, method := range map[string]string{"post": "POST", "put": "PUT", "patch": "PATCH", "del": "DELETE", "options": "OPTIONS"} {
		must(o.Set(m, func(call goja.FunctionCall) goja.Value {
			return vu.httpRequest(method, call.Argument(0), call.Argument(1), call.Argument(2))
		}))
	}
	must(o.Set("batch", vu.httpBatch))
	must(o.Set("expectedStatuses", func(call goja.FunctionCall) goja.Value {
		e := &expectedStatuses{}
		for _, a := range call.Arguments {
			if obj, ok := a.(*goja.Object); ok {
				e.ranges = append(e.ranges, [2]int64{obj.Get("min").ToInteger(), obj.Get("max").ToInteger()})
				continue
			}
			e.single = append(e.single, a.ToInteger())
		}
		return rt.ToValue(e)
	}))
	must(o.Set("setResponseCallback", func(cb goja.Value) {
		e, ok := cb.Export().(*expectedStatuses)
		if !ok && !goja.IsNull(cb) && !goja.IsUndefined(cb) {
			vu.Throw("setResponseCallback: only http.expectedStatuses(...) callbacks are supported")
		}
		vu.httpClient().expected = e
	}))
	must(o.Set("cookieJar", func() goja.Value { return vu.cookieJarObject() }))
	must(o.Set("asyncRequest", vu.unsupported("http.asyncRequest")))
	must(o.Set("file", vu.unsupported("http.file")))
	must(o.Set("url", vu.unsupported("http.url")))
	for _, n := range []string{"OCSP_STATUS_GOOD", "TLS_1_2", "TLS_1_3"} {
		must(o.Set(n, strings.ToLower(n)))
	}
	return o
}

func (vu *VU) cookieJarObject() goja.Value {
	rt := vu.RT
	j := rt.NewObject()
	must(j.Set("cookiesForURL", func(u string) goja.Value {
		pu, err := url.Parse(u)
		if err != nil {
			vu.Throw("cookiesForURL: %v", err)
		}
		out := rt.NewObject()
		for _, c := range vu.cookies().Cookies(pu) {
			prev := out.Get(c.Name)
			var vals []any
			if prev != nil {
				vals = prev.Export().([]any)
			}
			must(out.Set(c.Name, append(vals, c.Value)))
		}
		return out
	}))
	must(j.Set("set", func(call goja.FunctionCall) goja.Value {
		pu, err := url.Parse(call.Argument(0).String())
		if err != nil {
			vu.Throw("cookieJar.set: %v", err)
		}
		c := &http.Cookie{Name: call.Argument(1).String(), Value: call.Argument(2).String()}
		if opt, ok := call.Argument(3).(*goja.Object); ok {
			if v := opt.Get("path"); v != nil && !goja.IsUndefined(v) {
				c.Path = v.String()
			}
			if v := opt.Get("domain"); v != nil && !goja.IsUndefined(v) {
				c.Domain = v.String()
			}
		}
		vu.cookies().SetCookies(pu, []*http.Cookie{c})
		return goja.Undefined()
	}))
	must(j.Set("clear", vu.unsupported("cookieJar.clear")))
	must(j.Set("delete", vu.unsupported("cookieJar.delete")))
	return j
}

func (vu *VU) httpRequest(method string, u, body, params goja.Value) goja.Value {
	if vu.initCtx {
		vu.Throw("making http requests in the init context is not supported")
	}
	p := vu.prepare(method, u, body, params)
	hops := vu.do(vu.ctx, p)
	return vu.responseObject(p, hops)
}

// prepare reads a request's arguments on the VU's goroutine.
func (vu *VU) prepare(method string, u, body, params goja.Value) *prepared {
	p := &prepared{method: strings.ToUpper(method), url: u.String(), header: http.Header{}, tags: map[string]string{},
		timeout: 60 * time.Second, redirects: vu.S.HTTP.MaxRedirects, respType: "text"}
	if vu.S.HTTP.DiscardResponseBodies {
		p.respType = "none"
	}
	pu, err := url.Parse(p.url)
	if err != nil || pu.Host == "" {
		vu.Throw("invalid URL %q", p.url)
	}
	if pu.User != nil {
		p.basicUser = pu.User
		pu.User = nil
		p.url = pu.String()
	}
	p.header.Set("User-Agent", defaultUserAgent)
	if vu.S.HTTP.UserAgent != "" {
		p.header.Set("User-Agent", vu.S.HTTP.UserAgent)
	}
	if body != nil && !goja.IsUndefined(body) && !goja.IsNull(body) {
		switch b := body.Export().(type) {
		case string:
			p.body = []byte(b)
		case goja.ArrayBuffer:
			p.body = b.Bytes()
		case map[string]any:
			p.body = []byte(formEncode(b))
			p.header.Set("Content-Type", "application/x-www-form-urlencoded")
		default:
			p.body = vu.bytesOf(body)
		}
	}
	if po, ok := params.(*goja.Object); ok && !goja.IsUndefined(params) && !goja.IsNull(params) {
		if h, ok := po.Get("headers").(*goja.Object); ok {
			for _, k := range h.Keys() {
				p.header.Set(k, h.Get(k).String())
			}
		}
		for k, v := range vu.tagsArg(po.Get("tags")) {
			p.tags[k] = v
		}
		if t := po.Get("timeout"); t != nil && !goja.IsUndefined(t) {
			switch x := t.Export().(type) {
			case string:
				d, err := options.ParseDuration(x)
				if err != nil {
					vu.Throw("params.timeout: %v", err)
				}
				p.timeout = d
			default:
				p.timeout = time.Duration(t.ToFloat() * float64(time.Millisecond))
			}
		}
		if r := po.Get("redirects"); r != nil && !goja.IsUndefined(r) {
			p.redirects = r.ToInteger()
		}
		if rt := po.Get("responseType"); rt != nil && !goja.IsUndefined(rt) {
			p.respType = rt.String()
		}
		if a := po.Get("auth"); a != nil && !goja.IsUndefined(a) && a.String() != "basic" {
			vu.Throw("params.auth %q is not supported by wagate's k6 runtime (only basic)", a.String())
		}
		if cb := po.Get("responseCallback"); cb != nil && !goja.IsUndefined(cb) {
			e, ok := cb.Export().(*expectedStatuses)
			if !ok && !goja.IsNull(cb) {
				vu.Throw("params.responseCallback: only http.expectedStatuses(...) callbacks are supported")
			}
			p.expected = e
		}
		if co, ok := po.Get("cookies").(*goja.Object); ok {
			for _, k := range co.Keys() {
				v := co.Get(k)
				if vo, ok := v.(*goja.Object); ok && vo.ClassName() == "Object" {
					v = vo.Get("value")
				}
				p.cookies = append(p.cookies, &http.Cookie{Name: k, Value: v.String()})
			}
		}
	}
	if p.expected == nil {
		p.expected = vu.httpClient().expected
	}
	return p
}

func formEncode(m map[string]any) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	v := url.Values{}
	for _, k := range keys {
		switch x := m[k].(type) {
		case []any:
			for _, e := range x {
				v.Add(k, fmt.Sprint(e))
			}
		default:
			v.Add(k, fmt.Sprint(x))
		}
	}
	return v.Encode()
}

// do runs a request and its redirects, recording the http_req_* metrics of every hop. It uses
// no goja value, so http.batch runs it on several goroutines.
func (vu *VU) do(ctx context.Context, p *prepared) []hop {
	c := vu.httpClient()
	base := vu.Tags()
	var hops []hop
	method, target, body := p.method, p.url, p.body
	for i := int64(0); ; i++ {
		h := vu.roundTrip(ctx, c, p, method, target, body)
		vu.recordHop(c, base, p, &h)
		hops = append(hops, h)
		if h.err != nil || h.status < 300 || h.status >= 400 || h.header.Get("Location") == "" {
			break
		}
		if i >= p.redirects {
			if p.redirects > 0 {
				vu.S.Log("WARN", fmt.Sprintf("stopped after %d redirects and returned the redirection; pass { redirects: n } in the request params or set the global maxRedirects option", p.redirects), "url="+p.url)
			}
			break
		}
		next, err := url.Parse(target)
		if err == nil {
			next, err = next.Parse(h.header.Get("Location"))
		}
		if err != nil {
			break
		}
		target = next.String()
		if h.status == 301 || h.status == 302 || h.status == 303 {
			if method != "GET" && method != "HEAD" {
				method, body = "GET", nil
			}
		}
	}
	return hops
}

func (vu *VU) roundTrip(ctx context.Context, c *httpClient, p *prepared, method, target string, body []byte) hop {
	h := hop{reqMethod: method, reqURL: target, reqBody: body}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	var bodyReader io.Reader
	if body != nil {
		bodyReader = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, bodyReader)
	if err != nil {
		h.err, h.errCode = err, 1000
		return h
	}
	req.Header = p.header.Clone()
	if p.basicUser != nil {
		pw, _ := p.basicUser.Password()
		req.SetBasicAuth(p.basicUser.Username(), pw)
	}
	for _, ck := range vu.cookies().Cookies(req.URL) {
		req.AddCookie(ck)
	}
	for _, ck := range p.cookies {
		req.AddCookie(ck)
	}
	h.reqHeader = req.Header
	var (
		mu                                     sync.Mutex
		getConn, gotConn, dnsStart, dnsDone    time.Time
		connStart, connDone, tlsStart, tlsDone time.Time
		wrote, firstByte                       time.Time
		reused                                 bool
	)
	now := func(t *time.Time) { mu.Lock(); *t = time.Now(); mu.Unlock() }
	trace := &httptrace.ClientTrace{
		GetConn: func(string) { now(&getConn) },
		GotConn: func(info httptrace.GotConnInfo) {
			now(&gotConn)
			mu.Lock()
			reused = info.Reused
			if a, ok := info.Conn.RemoteAddr().(*net.TCPAddr); ok {
				h.remoteIP, h.remotePort = a.IP.String(), a.Port
			}
			mu.Unlock()
		},
		DNSStart:             func(httptrace.DNSStartInfo) { now(&dnsStart) },
		DNSDone:              func(httptrace.DNSDoneInfo) { now(&dnsDone) },
		ConnectStart:         func(string, string) { now(&connStart) },
		ConnectDone:          func(string, string, error) { now(&connDone) },
		TLSHandshakeStart:    func() { now(&tlsStart) },
		TLSHandshakeDone:     func(tls.ConnectionState, error) { now(&tlsDone) },
		WroteRequest:         func(httptrace.WroteRequestInfo) { now(&wrote) },
		GotFirstResponseByte: func() { now(&firstByte) },
	}
	req = req.WithContext(httptrace.WithClientTrace(ctx, trace))
	began := time.Now()
	resp, err := c.transport.RoundTrip(req)
	var readDone time.Time
	if err == nil {
		if p.respType == "none" || method == "HEAD" {
			_, err = io.Copy(io.Discard, resp.Body)
		} else {
			h.body, err = io.ReadAll(resp.Body)
		}
		readDone = time.Now()
		resp.Body.Close()
		h.status, h.proto, h.header = resp.StatusCode, resp.Proto, resp.Header
		h.statusText = resp.Status
		h.cookies = resp.Cookies()
		if resp.TLS != nil {
			h.tlsVersion = tlsVersionName(resp.TLS.Version)
		}
		if u, e := url.Parse(target); e == nil {
			vu.cookies().SetCookies(u, h.cookies)
		}
	}
	h.url = target
	mu.Lock()
	defer mu.Unlock()
	span := func(a, b time.Time) time.Duration {
		if a.IsZero() || b.IsZero() || b.Before(a) {
			return 0
		}
		return b.Sub(a)
	}
	if getConn.IsZero() {
		getConn = began
	}
	connEnd := gotConn
	if !reused {
		if !dnsStart.IsZero() {
			connEnd = dnsStart
		} else if !connStart.IsZero() {
			connEnd = connStart
		}
	}
	h.blocked = span(getConn, connEnd)
	h.lookingUp = span(dnsStart, dnsDone)
	h.connecting = span(connStart, connDone)
	h.tlsHandshaking = span(tlsStart, tlsDone)
	h.sending = span(gotConn, wrote)
	h.waiting = span(wrote, firstByte)
	h.receiving = span(firstByte, readDone)
	if err != nil {
		h.err, h.errCode = err, errorCode(err)
		if !firstByte.IsZero() && h.status == 0 {
			h.receiving = span(firstByte, time.Now())
		}
	}
	return h
}

func tlsVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS13:
		return "tls1.3"
	case tls.VersionTLS12:
		return "tls1.2"
	case tls.VersionTLS11:
		return "tls1.1"
	}
	return "tls1.0"
}

// errorCode maps a transport error onto k6's error_code families: 1050 request timeout, 1100
// DNS, 1210/1212 dial (refused), 1300 TLS, 1000 other.
func errorCode(err error) int {
	var dnsErr *net.DNSError
	var tlsErr *tls.CertificateVerificationError
	switch {
	case errors.Is(err, context.DeadlineExceeded), os.IsTimeout(err):
		return 1050
	case errors.As(err, &dnsErr):
		return 1100
	case errors.Is(err, syscall.ECONNREFUSED):
		return 1212
	case errors.Is(err, syscall.ECONNRESET):
		return 1220
	case errors.As(err, &tlsErr):
		return 1310
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return 1210
	}
	return 1000
}

func (vu *VU) recordHop(c *httpClient, base metrics.Tags, p *prepared, h *hop) {
	tags := make(metrics.Tags, len(base)+8)
	for k, v := range base {
		tags[k] = v
	}
	tags["method"], tags["url"], tags["name"] = h.reqMethod, h.reqURL, h.reqURL
	for k, v := range p.tags {
		tags[k] = v
	}
	tags["status"] = strconv.Itoa(h.status)
	if h.proto != "" {
		tags["proto"] = h.proto
	}
	if h.tlsVersion != "" {
		tags["tls_version"] = h.tlsVersion
	}
	expected := h.err == nil && p.expected.ok(h.status)
	tags["expected_response"] = strconv.FormatBool(expected)
	if h.err != nil {
		tags["error"] = h.err.Error()
		tags["error_code"] = strconv.Itoa(h.errCode)
	} else if h.status >= 400 {
		tags["error_code"] = strconv.Itoa(1000 + h.status)
	}
	r := vu.S.Registry
	duration := h.sending + h.waiting + h.receiving
	r.RecordRequest(tags, duration, h.blocked, !expected)
	r.ObserveDuration("http_req_connecting", h.connecting, tags)
	r.ObserveDuration("http_req_tls_handshaking", h.tlsHandshaking, tags)
	r.ObserveDuration("http_req_sending", h.sending, tags)
	r.ObserveDuration("http_req_waiting", h.waiting, tags)
	r.ObserveDuration("http_req_receiving", h.receiving, tags)
	dataTags := vu.Tags()
	if s := c.sent.Swap(0); s > 0 {
		r.Add("data_sent", float64(s), dataTags)
	}
	if n := c.received.Swap(0); n > 0 {
		r.Add("data_received", float64(n), dataTags)
	}
}

// responseObject builds the k6 Response of a request's last hop.
func (vu *VU) responseObject(p *prepared, hops []hop) goja.Value {
	rt := vu.RT
	h := hops[len(hops)-1]
	if h.err != nil && vu.S.Throw {
		vu.Throw("request %s %s: %v", p.method, p.url, h.err)
	}
	if h.err != nil {
		vu.S.Log("WARN", fmt.Sprintf("Request Failed  error=%q", h.err.Error()))
	}
	o := rt.NewObject()
	must(o.Set("status", h.status))
	must(o.Set("status_text", h.statusText))
	must(o.Set("url", h.url))
	must(o.Set("proto", h.proto))
	must(o.Set("remote_ip", h.remoteIP))
	must(o.Set("remote_port", h.remotePort))
	must(o.Set("tls_version", h.tlsVersion))
	// headers, cookies, timings and request are built on first read: most scripts read status
	// and body only.
	lazy := func(name string, build func() goja.Value) {
		var v goja.Value
		getter := rt.ToValue(func(goja.FunctionCall) goja.Value {
			if v == nil {
				v = build()
			}
			return v
		})
		must(o.DefineAccessorProperty(name, getter, nil, goja.FLAG_TRUE, goja.FLAG_TRUE))
	}
	lazy("headers", func() goja.Value {
		headers := rt.NewObject()
		for k, v := range h.header {
			must(headers.Set(http.CanonicalHeaderKey(k), strings.Join(v, ", ")))
		}
		return headers
	})
	lazy("cookies", func() goja.Value { return vu.cookiesObject(h.cookies) })
	switch {
	case h.err != nil && h.body == nil, p.respType == "none":
		must(o.Set("body", goja.Null()))
	case p.respType == "binary":
		must(o.Set("body", rt.NewArrayBuffer(h.body)))
	default:
		must(o.Set("body", string(h.body)))
	}
	errText := ""
	if h.err != nil {
		errText = h.err.Error()
	}
	must(o.Set("error", errText))
	code := 0
	if h.err != nil {
		code = h.errCode
	} else if h.status >= 400 {
		code = 1000 + h.status
	}
	must(o.Set("error_code", code))
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	lazy("timings", func() goja.Value {
		t := rt.NewObject()
		must(t.Set("duration", ms(h.sending+h.waiting+h.receiving)))
		must(t.Set("blocked", ms(h.blocked)))
		must(t.Set("looking_up", ms(h.lookingUp)))
		must(t.Set("connecting", ms(h.connecting)))
		must(t.Set("tls_handshaking", ms(h.tlsHandshaking)))
		must(t.Set("sending", ms(h.sending)))
		must(t.Set("waiting", ms(h.waiting)))
		must(t.Set("receiving", ms(h.receiving)))
		return t
	})
	lazy("request", func() goja.Value {
		req := rt.NewObject()
		must(req.Set("method", h.reqMethod))
		must(req.Set("url", h.reqURL))
		rh := rt.NewObject()
		for k, v := range h.reqHeader {
			must(rh.Set(k, v))
		}
		must(req.Set("headers", rh))
		must(req.Set("body", string(h.reqBody)))
		return req
	})
	var parsed goja.Value
	must(o.Set("json", func(call goja.FunctionCall) goja.Value {
		if parsed == nil {
			b := o.Get("body")
			if goja.IsNull(b) || goja.IsUndefined(b) {
				vu.Throw("cannot parse a null body as JSON (responseType none or discardResponseBodies)")
			}
			v, err := vu.parseJSON(b.String())
			if err != nil {
				panic(rt.NewGoError(fmt.Errorf("cannot parse the response body as JSON: %w", err)))
			}
			parsed = v
		}
		sel := call.Argument(0)
		if goja.IsUndefined(sel) {
			return parsed
		}
		return vu.selectJSON(parsed, sel.String())
	}))
	must(o.Set("html", vu.unsupported("Response.html")))
	must(o.Set("submitForm", vu.unsupported("Response.submitForm")))
	must(o.Set("clickLink", vu.unsupported("Response.clickLink")))
	return o
}

// selectJSON walks a gjson-style basic path ("a.b.0.c", "items.#" for a length).
func (vu *VU) selectJSON(v goja.Value, path string) goja.Value {
	for _, seg := range strings.Split(path, ".") {
		o, ok := v.(*goja.Object)
		if !ok {
			return goja.Undefined()
		}
		if seg == "#" {
			return o.Get("length")
		}
		next := o.Get(seg)
		if next == nil {
			return goja.Undefined()
		}
		v = next
	}
	return v
}

func (vu *VU) cookiesObject(cookies []*http.Cookie) *goja.Object {
	rt := vu.RT
	out := rt.NewObject()
	for _, c := range cookies {
		co := rt.NewObject()
		must(co.Set("name", c.Name))
		must(co.Set("value", c.Value))
		must(co.Set("domain", c.Domain))
		must(co.Set("path", c.Path))
		must(co.Set("http_only", c.HttpOnly))
		must(co.Set("secure", c.Secure))
		must(co.Set("max_age", c.MaxAge))
		must(co.Set("expires", c.Expires.UnixMilli()))
		var list []any
		if prev := out.Get(c.Name); prev != nil {
			list = prev.Export().([]any)
		}
		must(out.Set(c.Name, rt.NewArray(append(list, co)...)))
	}
	return out
}

// httpBatch is http.batch: requests given as an array or an object (by name), each a URL
// string, [method, url, body, params] or {method, url, body, params}, run in parallel.
func (vu *VU) httpBatch(reqs goja.Value) goja.Value {
	if vu.initCtx {
		vu.Throw("making http requests in the init context is not supported")
	}
	rt := vu.RT
	obj, ok := reqs.(*goja.Object)
	if !ok {
		vu.Throw("http.batch expects an array or an object of requests")
	}
	keys := obj.Keys()
	preps := make([]*prepared, len(keys))
	for i, k := range keys {
		r := obj.Get(k)
		ro, isObj := r.(*goja.Object)
		switch {
		case !isObj:
			preps[i] = vu.prepare("GET", r, goja.Undefined(), goja.Undefined())
		case ro.ClassName() == "Array":
			m := ro.Get("0").String()
			preps[i] = vu.prepare(m, ro.Get("1"), orUndefined(ro.Get("2")), orUndefined(ro.Get("3")))
		default:
			m := "GET"
			if v := ro.Get("method"); v != nil && !goja.IsUndefined(v) {
				m = v.String()
			}
			preps[i] = vu.prepare(m, ro.Get("url"), orUndefined(ro.Get("body")), orUndefined(ro.Get("params")))
		}
	}
	results := make([][]hop, len(preps))
	var wg sync.WaitGroup
	for i, p := range preps {
		wg.Go(func() { results[i] = vu.do(vu.ctx, p) })
	}
	wg.Wait()
	var out *goja.Object
	if obj.ClassName() == "Array" {
		items := make([]any, len(preps))
		for i, p := range preps {
			items[i] = vu.responseObject(p, results[i])
		}
		out = rt.NewArray(items...)
	} else {
		out = rt.NewObject()
		for i, k := range keys {
			must(out.Set(k, vu.responseObject(preps[i], results[i])))
		}
	}
	return out
}

func orUndefined(v goja.Value) goja.Value {
	if v == nil {
		return goja.Undefined()
	}
	return v
}
