package metrics

import (
	"bufio"
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
type NDJSON struct {
	mu         sync.Mutex
	w          *bufio.Writer
	err        error
	thresholds map[string][]string
	// line is the buffer a point's line is built in, reused.
	line []byte
}

// NewNDJSON writes to w; thresholds lists each metric's threshold expressions for its Metric line.
func NewNDJSON(w io.Writer, thresholds map[string][]string) *NDJSON {
	return &NDJSON{w: bufio.NewWriterSize(w, 1<<16), thresholds: thresholds}
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

func (n *NDJSON) write(v any) {
	if n.err != nil {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		n.err = err
		return
	}
	b = append(b, '\n')
	_, n.err = n.w.Write(b)
}

// Metric writes a metric declaration line.
func (n *NDJSON) Metric(name, typ, contains string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	th := n.thresholds[name]
	if th == nil {
		th = []string{}
	}
	n.write(ndMetric{Type: "Metric", Metric: name, Data: ndMetricData{Name: name, Type: typ, Contains: contains, Thresholds: th}})
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
	defer n.mu.Unlock()
	if n.err != nil {
		return
	}
	b, err := appendPoint(n.line[:0], name, at, value, tags)
	if err != nil {
		n.err = err
		return
	}
	n.line = b
	_, n.err = n.w.Write(b)
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
	defer n.mu.Unlock()
	if n.err == nil {
		n.err = n.w.Flush()
	}
	return n.err
}
