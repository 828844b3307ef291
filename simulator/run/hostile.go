package run

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"wagate/simulator/metrics"
)

// Bounds of a hostile-clients flood.
const (
	hostileWorkers   = 8
	hostileEvery     = 20 * time.Millisecond // per worker: about 400 requests/s in all
	hostileSlowConns = 200
	// hostileSettle bounds the wait for the gateway's goroutines to return to their level before
	// the flood (slow connections end at the server's read-header timeout, 5 s).
	hostileSettle = 20 * time.Second
)

// hostileFlood attacks the gateway's API for d while the users go on: malformed and oversized
// bodies and headers, requests without or with a wrong token, and slowloris connections that
// send a header line every 500 ms and never finish. It counts the answers by status
// (hostile_requests{code}), and once the flood is over records gateway_goroutine_growth: the
// gateway's goroutines after they settled minus before the flood.
func (r *runner) hostileFlood(ctx context.Context, d time.Duration, w *FaultWindow) error {
	before := r.gatewayGoroutines(ctx)
	w.Start = time.Now()
	fctx, stop := context.WithTimeout(ctx, d)
	defer stop()
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: hostileWorkers}}
	defer hc.CloseIdleConnections()
	var mu sync.Mutex
	codes := map[string]int64{}
	count := func(code string) {
		mu.Lock()
		codes[code]++
		mu.Unlock()
		r.reg.Add("hostile_requests", 1, metrics.Tags{"code": code})
	}
	send := func(method, path, auth, body string, header map[string]string) {
		req, err := http.NewRequestWithContext(fctx, method, r.w.gatewayURL+path, strings.NewReader(body))
		if err != nil {
			return
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := hc.Do(req)
		if err != nil {
			if fctx.Err() == nil {
				count("error")
			}
			return
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		count(strconv.Itoa(resp.StatusCode))
	}
	token := "Bearer " + r.w.gatewayToken
	big := strings.Repeat("A", 1<<20)
	malformed := []string{`{`, `{"session_id":`, `[]`, `null`, `{"session_id":123}`, "\x00\xff\xfe", `{"to":1,"text":[]}`,
		`{"session_id":"` + strings.Repeat("x", 500) + `"}`}
	var wg sync.WaitGroup
	for i := range hostileWorkers {
		wg.Go(func() {
			t := time.NewTicker(hostileEvery)
			defer t.Stop()
			for n := 0; ; n++ {
				select {
				case <-fctx.Done():
					return
				case <-t.C:
				}
				body := malformed[(i+n)%len(malformed)]
				switch n % 8 {
				case 0, 1:
					send("POST", "/sessions", token, body, nil) // malformed, authenticated
				case 2:
					send("POST", "/sessions/hostile/messages", token, `{"to":"1","text":"`+big[:n%(64<<10)+(64<<10)]+`"}`, nil) // just over the body bound
				case 3:
					if i == 0 {
						send("POST", "/sessions", token, big, nil) // 1 MiB
					} else {
						send("GET", "/sessions", token, "", map[string]string{"X-Junk": big[:100<<10]}) // header over the bound
					}
				default:
					send("GET", "/sessions/hostile-"+strconv.Itoa(n), "Bearer guess-"+strconv.Itoa(n), "", nil) // unauthenticated
				}
			}
		})
	}
	var slowClosed atomic.Int64
	for range hostileSlowConns {
		wg.Go(func() {
			dl := net.Dialer{Timeout: 5 * time.Second}
			c, err := dl.DialContext(fctx, "tcp", strings.TrimPrefix(r.w.gatewayURL, "http://"))
			if err != nil {
				return
			}
			defer c.Close()
			fmt.Fprintf(c, "GET /sessions HTTP/1.1\r\nHost: gateway\r\n")
			limit := time.Now().Add(d + 10*time.Second)
			for time.Now().Before(limit) {
				if _, err := fmt.Fprintf(c, "X-Slow-%d: 1\r\n", time.Now().UnixNano()); err != nil {
					slowClosed.Add(1)
					return
				}
				_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
				if _, err := bufio.NewReader(c).ReadByte(); err != nil {
					var ne net.Error
					if !errors.As(err, &ne) || !ne.Timeout() {
						slowClosed.Add(1) // the server closed it
						return
					}
				}
			}
		})
	}
	wg.Wait()
	hc.CloseIdleConnections()
	w.End = time.Now()
	// Let the gateway settle, then compare its goroutines with before.
	after := r.gatewayGoroutines(ctx)
	settleBy := time.Now().Add(hostileSettle)
	for before >= 0 && after > before+20 && time.Now().Before(settleBy) {
		time.Sleep(500 * time.Millisecond)
		after = r.gatewayGoroutines(ctx)
	}
	if before >= 0 && after >= 0 {
		r.reg.Set("gateway_goroutine_growth", after-before, nil)
	}
	mu.Lock()
	keys := make([]string, 0, len(codes))
	var total int64
	for k, n := range codes {
		keys = append(keys, k+": "+strconv.FormatInt(n, 10))
		total += n
	}
	mu.Unlock()
	sort.Strings(keys)
	w.Detail = fmt.Sprintf("%d hostile requests in %s (answers %s); %d/%d slowloris connections closed by the gateway; goroutines %.0f before, %.0f after settling",
		total, w.End.Sub(w.Start).Round(time.Second), strings.Join(keys, ", "), slowClosed.Load(), hostileSlowConns, before, after)
	r.log.Info("hostile clients done", "detail", w.Detail)
	return nil
}

// gatewayGoroutines scrapes go_goroutines from the gateway's /metrics (-1 when unknown).
func (r *runner) gatewayGoroutines(ctx context.Context) float64 {
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	p, err := scrape(sctx, r.hc, r.w.gatewayURL+"/metrics", r.w.gatewayToken)
	if err != nil {
		return -1
	}
	return p.goroutines()
}
