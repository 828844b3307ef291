package run

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"wagate/internal/procstat"
)

// procSample is one reading of a process's CPU time and resident memory.
type procSample struct {
	at       time.Time
	cpu      time.Duration
	rssBytes int64
}

// readProc reads /proc/<pid>/stat and /proc/<pid>/status.
func readProc(pid int) (procSample, error) {
	s := procSample{at: time.Now()}
	var fs procstat.FS
	p, err := fs.Process(strconv.Itoa(pid))
	if err != nil {
		return s, err
	}
	s.cpu = p.CPU
	s.rssBytes, err = fs.RSS(strconv.Itoa(pid))
	return s, err
}

// cpuPercent is the CPU used between two samples, in % of one core.
func cpuPercent(a, b procSample) float64 {
	wall := b.at.Sub(a.at).Seconds()
	if wall <= 0 {
		return 0
	}
	return (b.cpu - a.cpu).Seconds() / wall * 100
}

// promSample is a parsed Prometheus text exposition: metric name -> sum over label sets.
type promSample map[string]float64

// scrape reads a Prometheus text endpoint.
func scrape(ctx context.Context, hc *http.Client, url, token string) (promSample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return parseProm(resp.Body), nil
}

func parseProm(r io.Reader) promSample {
	out := promSample{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name := line
		rest := ""
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name = line[:i]
			rest = line[i:]
		}
		if j := strings.LastIndexByte(rest, '}'); j >= 0 {
			rest = rest[j+1:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		out[name] += v
	}
	return out
}

// goroutines is go_goroutines, or -1.
func (p promSample) goroutines() float64 {
	if v, ok := p["go_goroutines"]; ok {
		return v
	}
	return -1
}

// outboxDepth sums the gauges that describe events waiting in the outbox, or -1 when the
// gateway exposes none (legacy mode has no outbox).
func (p promSample) outboxDepth() float64 {
	found := false
	var sum float64
	for name, v := range p {
		if !strings.Contains(name, "outbox") {
			continue
		}
		if strings.HasSuffix(name, "_total") || strings.HasSuffix(name, "_bucket") || strings.HasSuffix(name, "_sum") || strings.HasSuffix(name, "_count") {
			continue
		}
		if strings.Contains(name, "pending") || strings.Contains(name, "depth") || strings.Contains(name, "length") {
			sum += v
			found = true
		}
	}
	if !found {
		return -1
	}
	return sum
}

// eventsEmitted sums counters of events the gateway produced for Laravel (name with "events" and
// "_total", not delivery or dead-letter counters), or -1.
func (p promSample) eventsEmitted() float64 {
	for _, name := range []string{"wagate_events_total", "wagate_session_events_total"} {
		if v, ok := p[name]; ok {
			return v
		}
	}
	return -1
}

// redisOpsPerSec asks a redis-server for instantaneous_ops_per_sec (INFO stats).
func redisOpsPerSec(ctx context.Context, url string) (float64, error) {
	addr := strings.TrimPrefix(url, "redis://")
	if i := strings.IndexByte(addr, '/'); i >= 0 {
		addr = addr[:i]
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if _, err := conn.Write([]byte("INFO stats\r\n")); err != nil {
		return 0, err
	}
	br := bufio.NewReader(conn)
	header, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(header, "$") {
		return 0, fmt.Errorf("redis INFO: unexpected answer %q", header)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(header[1:]))
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(body), "\r\n") {
		if v, ok := strings.CutPrefix(line, "instantaneous_ops_per_sec:"); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("redis INFO: no instantaneous_ops_per_sec")
}
