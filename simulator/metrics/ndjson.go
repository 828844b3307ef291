package metrics

import (
	"bufio"
	"encoding/json"
	"io"
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
	n.mu.Lock()
	defer n.mu.Unlock()
	if tags == nil {
		tags = Tags{}
	}
	n.write(ndPoint{Type: "Point", Metric: name, Data: ndPointData{Time: at, Value: value, Tags: tags}})
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
