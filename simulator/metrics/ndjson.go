package metrics

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"sync"
	"time"
)

// NDJSON writes k6's `--out json` format: one {"type":"Metric",...} line when a metric first
// appears and one {"type":"Point",...} line per sample. Safe for concurrent use.
//
// Lines gather in a chunk of ndjsonChunk bytes; the writer whose line fills it writes it to w
// outside the lock the others append under, so a slow write (a disk under writeback pressure)
// holds up the one poller that filled the chunk, not every poller recording meanwhile. Chunks
// reach w one at a time and in order.
type NDJSON struct {
	mu sync.Mutex // guards buf, spare, err
	// buf holds the lines not yet written; spare is the chunk written last, for reuse.
	buf, spare []byte
	err        error
	// wmu is held while a chunk is written to w; it is taken under mu, so chunks are written in
	// the order they filled.
	wmu        sync.Mutex
	w          io.Writer
	thresholds map[string][]string
}

// ndjsonChunk is the size at which buffered lines are written.
const ndjsonChunk = 1 << 16

// NewNDJSON writes to w; thresholds lists each metric's threshold expressions for its Metric line.
func NewNDJSON(w io.Writer, thresholds map[string][]string) *NDJSON {
	return &NDJSON{w: w, buf: make([]byte, 0, ndjsonChunk+1024), spare: make([]byte, 0, ndjsonChunk+1024), thresholds: thresholds}
}

// endLine ends the append of a line (n.mu held, released here): when the chunk is full it is
// written to w after n.mu is released.
func (n *NDJSON) endLine() {
	if len(n.buf) < ndjsonChunk {
		n.mu.Unlock()
		return
	}
	full := n.buf
	n.buf, n.spare = n.spare[:0], nil
	n.wmu.Lock() // the previous chunk's write ends first: chunks stay in order
	n.mu.Unlock()
	_, err := n.w.Write(full)
	n.wmu.Unlock()
	n.mu.Lock()
	n.err = cmp.Or(n.err, err)
	if n.spare == nil {
		n.spare = full[:0]
	}
	n.mu.Unlock()
}

type ndMetric struct {
	Type   string       `json:"type"`
	Data   ndMetricData `json:"data"`
	Metric string       `json:"metric"`
}

type ndMetricData struct {
	Name       string   `json:"name"`
	Type       string   `json:"type"`
	Contains   string   `json:"contains"`
	Thresholds []string `json:"thresholds"`
	Submetrics any      `json:"submetrics"`
}

type ndPoint struct {
	Type   string      `json:"type"`
	Data   ndPointData `json:"data"`
	Metric string      `json:"metric"`
}

type ndPointData struct {
	Time  time.Time `json:"time"`
	Value float64   `json:"value"`
	Tags  Tags      `json:"tags"`
}

// Metric writes a metric declaration line.
func (n *NDJSON) Metric(name, typ, contains string) {
	th := n.thresholds[name]
	if th == nil {
		th = []string{}
	}
	b, err := json.Marshal(ndMetric{Type: "Metric", Metric: name, Data: ndMetricData{Name: name, Type: typ, Contains: contains, Thresholds: th}})
	n.mu.Lock()
	if n.err != nil || err != nil {
		n.err = cmp.Or(n.err, err)
		n.mu.Unlock()
		return
	}
	n.buf = append(append(n.buf, b...), '\n')
	n.endLine()
}

// Point writes one sample line.
func (n *NDJSON) Point(name string, at time.Time, value float64, tags Tags) {
	if tags == nil {
		tags = Tags{}
	}
	enc, err := json.Marshal(tags)
	if err != nil {
		n.mu.Lock()
		n.err = cmp.Or(n.err, err)
		n.mu.Unlock()
		return
	}
	n.PointEncodedTags(name, at, value, enc)
}

// PointEncodedTags writes one sample line whose tags are already a JSON object (json.Marshal of
// Tags). The line is the one encoding/json writes for it, built without reflection: the load
// generator writes four per API request, ~28,000 a second at 1000 users.
func (n *NDJSON) PointEncodedTags(name string, at time.Time, value float64, tags []byte) {
	n.mu.Lock()
	if n.err != nil {
		n.mu.Unlock()
		return
	}
	b, err := appendPoint(n.buf, name, at, value, tags)
	if err != nil {
		n.err = err
		n.mu.Unlock()
		return
	}
	n.buf = b
	n.endLine()
}

// appendPoint appends the line {"type":"Point","data":{"time":T,"value":V,"tags":TAGS},"metric":NAME}
// as encoding/json writes ndPoint.
func appendPoint(b []byte, name string, at time.Time, value float64, tags []byte) ([]byte, error) {
	if math.IsNaN(value) || math.IsInf(value, 0) {
		return b, &json.UnsupportedValueError{Str: strconv.FormatFloat(value, 'g', -1, 64)}
	}
	if y := at.Year(); y < 0 || y > 9999 {
		return b, fmt.Errorf("point time %v: year outside of range [0,9999]", at)
	}
	b = append(b, `{"type":"Point","data":{"time":"`...)
	b = at.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","value":`...)
	b = appendJSONFloat(b, value)
	b = append(b, `,"tags":`...)
	b = append(b, tags...)
	b = append(b, `},"metric":`...)
	b = appendJSONString(b, name)
	return append(b, "}\n"...), nil
}

// appendJSONFloat appends f as encoding/json writes a float64.
func appendJSONFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' { // clean up e-09 to e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendJSONString appends s as a JSON string: plain ASCII as is, anything else through
// encoding/json (its escaping of <, >, & and control characters).
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			enc, _ := json.Marshal(s)
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// Flush writes buffered lines and returns the first error met.
func (n *NDJSON) Flush() error {
	n.mu.Lock()
	n.wmu.Lock() // after any chunk being written
	if n.err == nil && len(n.buf) > 0 {
		_, n.err = n.w.Write(n.buf)
	}
	n.buf = n.buf[:0]
	n.wmu.Unlock()
	defer n.mu.Unlock()
	return n.err
}
