package metrics

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"sync"
	"testing"
	"time"
)

func TestAPointLineIsTheLineEncodingJSONWrites(t *testing.T) {
	zone := time.FixedZone("X", -(3*3600 + 30*60))
	tests := []struct {
		name   string
		metric string
		at     time.Time
		value  float64
		tags   Tags
	}{
		{"a duration, UTC with nanoseconds", "http_req_duration", time.Date(2026, 12, 6, 20, 1, 2, 123456789, time.UTC), 1.5, Tags{"endpoint": "status", "status": "200"}},
		{"a count, no tags", "http_reqs", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), 1, nil},
		{"zero", "http_req_failed", time.Date(2026, 1, 2, 3, 4, 5, 100, zone), 0, Tags{}},
		{"negative, trailing zeros trimmed", "vus", time.Date(2026, 1, 2, 3, 4, 5, 1000, time.UTC), -3.25, Tags{"a": "b"}},
		{"tiny: exponent", "x", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), 1.2e-7, nil},
		{"huge: exponent", "x", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), 3e21, nil},
		{"large but plain", "x", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), 123456789012.25, nil},
		{"tags needing escapes", "x", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), 2, Tags{"name": `a"b<c>&d`, "ü": "\u2028\n"}},
		{"a metric name needing escapes", `odd<"name">`, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tags := tt.tags
			if tags == nil {
				tags = Tags{}
			}
			want, err := json.Marshal(ndPoint{Type: "Point", Metric: tt.metric, Data: ndPointData{Time: tt.at, Value: tt.value, Tags: tags}})
			if err != nil {
				t.Fatal(err)
			}
			enc, _ := json.Marshal(tags)
			got, err := appendPoint(nil, tt.metric, tt.at, tt.value, enc)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want)+"\n" {
				t.Errorf("line\n got %s\nwant %s", got, want)
			}
		})
	}
}

func TestAPointThatJSONCannotHoldStopsTheStreamAsEncodingJSONDid(t *testing.T) {
	var buf bytes.Buffer
	nd := NewNDJSON(&buf, nil)
	nd.Point("x", time.Now(), math.NaN(), nil)
	nd.Point("x", time.Now(), 1, nil)
	if err := nd.Flush(); err == nil {
		t.Fatal("Flush after a NaN point: no error")
	}
	if buf.Len() != 0 {
		t.Errorf("lines written after the error: %q", buf.String())
	}
}

func TestRecordTaggedWritesTheLinesRecordRequestWrites(t *testing.T) {
	at := time.Date(2026, 12, 6, 20, 0, 0, 42, time.UTC)
	tags := Tags{"endpoint": "status", "method": "GET", "status": "200", "scenario": "users"}
	lines := func(record func(r *Registry)) string {
		var buf bytes.Buffer
		nd := NewNDJSON(&buf, nil)
		r := NewRegistry(nd)
		r.now = func() time.Time { return at }
		record(r)
		if err := nd.Flush(); err != nil {
			t.Fatal(err)
		}
		return buf.String()
	}
	plain := lines(func(r *Registry) {
		r.RecordRequest(tags, 3*time.Millisecond, 20*time.Microsecond, false)
		r.RecordRequest(tags, 7*time.Millisecond, 0, true)
	})
	rt := NewRequestTags(tags)
	tagged := lines(func(r *Registry) {
		r.RecordTagged(rt, 3*time.Millisecond, 20*time.Microsecond, false)
		r.RecordTagged(rt, 7*time.Millisecond, 0, true)
	})
	if plain != tagged {
		t.Errorf("RecordTagged wrote\n%s\nRecordRequest wrote\n%s", tagged, plain)
	}
	if n := bytes.Count([]byte(tagged), []byte("\n")); n != 4+8 {
		t.Errorf("%d lines, want 4 declarations and 8 points:\n%s", n, tagged)
	}
}

// blockingSink holds every point until released.
type blockingSink struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (s *blockingSink) Metric(name, typ, contains string) {}
func (s *blockingSink) Point(name string, at time.Time, value float64, tags Tags) {
	s.once.Do(func() { close(s.entered) })
	<-s.release
}
func (s *blockingSink) PointEncodedTags(name string, at time.Time, value float64, tags []byte) {
	s.Point(name, at, value, nil)
}

func TestARequestsPointsAreWrittenOutsideTheRegistrysLock(t *testing.T) {
	sink := &blockingSink{entered: make(chan struct{}), release: make(chan struct{})}
	r := NewRegistry(sink)
	rt := NewRequestTags(Tags{"endpoint": "status"})
	go r.RecordTagged(rt, time.Millisecond, 0, false)
	<-sink.entered // the poller is inside the sink, writing its points
	// Total takes the registry's lock, as every other recording does: it returns while the
	// poller is still writing, and the request is already counted.
	counted := make(chan float64)
	go func() { counted <- r.Total("http_reqs", nil) }()
	select {
	case n := <-counted:
		if n != 1 {
			t.Errorf("http_reqs while its points are written: %v, want 1", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the registry stayed locked while a request's points were written")
	}
	close(sink.release)
}

func TestRecordingAPollWithTheNDJSONSinkAllocatesNothing(t *testing.T) {
	r := NewRegistry(NewNDJSON(io.Discard, nil))
	rt := NewRequestTags(Tags{"endpoint": "status", "method": "GET", "status": "200"})
	r.RecordTagged(rt, time.Millisecond, 0, false) // declares the metrics and the series
	if n := testing.AllocsPerRun(1000, func() { r.RecordTagged(rt, 2*time.Millisecond, time.Microsecond, false) }); n != 0 {
		t.Errorf("RecordTagged with the NDJSON sink: %v allocations per request, want 0", n)
	}
}

// BenchmarkRecordTaggedWithNDJSON is what the load generator spends recording one poll (four
// points written to metrics.ndjson): go test ./simulator/metrics -run '^$' -bench RecordTagged -benchmem
func BenchmarkRecordTaggedWithNDJSON(b *testing.B) {
	r := NewRegistry(NewNDJSON(io.Discard, nil))
	rt := NewRequestTags(Tags{"endpoint": "status", "method": "GET", "status": "200", "scenario": "users"})
	b.ReportAllocs()
	for b.Loop() {
		r.RecordTagged(rt, 2*time.Millisecond, time.Microsecond, false)
	}
}

// stallingWriter blocks its first Write until released, like a file under writeback pressure.
type stallingWriter struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	writes  int
	stalled chan struct{}
	release chan struct{}
}

func (w *stallingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.writes++
	first := w.writes == 1
	w.mu.Unlock()
	if first {
		close(w.stalled)
		<-w.release
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func TestPointsAreNotHeldUpByAChunkBeingWrittenAndReachTheFileInOrder(t *testing.T) {
	w := &stallingWriter{stalled: make(chan struct{}), release: make(chan struct{})}
	nd := NewNDJSON(w, nil)
	tags := []byte(`{"endpoint":"status"}`)
	at := time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)
	filled := make(chan int)
	go func() { // fills the first chunk, whose write stalls
		for i := 0; ; i++ {
			nd.PointEncodedTags("http_reqs", at, float64(i), tags)
			select {
			case <-w.stalled:
				filled <- i + 1
				return
			default:
			}
		}
	}()
	<-w.stalled
	done := make(chan struct{})
	go func() {
		for j := range 100 {
			nd.PointEncodedTags("http_req_duration", at, float64(j), tags)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("points waited for the stalled write of a full chunk")
	}
	close(w.release)
	reqs := <-filled
	if err := nd.Flush(); err != nil {
		t.Fatal(err)
	}
	var last float64 = -1
	lines := bytes.Split(bytes.TrimSpace(w.buf.Bytes()), []byte("\n"))
	for _, l := range lines {
		var p ndPoint
		if err := json.Unmarshal(l, &p); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if p.Metric == "http_reqs" {
			if p.Data.Value != last+1 {
				t.Fatalf("http_reqs %v after %v: chunks out of order", p.Data.Value, last)
			}
			last = p.Data.Value
		}
	}
	if got := len(lines); got != reqs+100 {
		t.Errorf("%d lines in the file, want the %d points written", got, reqs+100)
	}
}
