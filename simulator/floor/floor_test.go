package floor

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"testing"
)

func TestTheFloorAnswersEveryRequestWithTheSameJSONOfTheStatusAnswersSize(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, ln, StatusSize) }()
	for _, path := range []string{"/sessions/a", "/sessions/b/qr", "/"} {
		resp, err := http.Get("http://" + ln.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || len(body) != StatusSize || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("GET %s: %d, %d bytes, %q; want 200, %d bytes of JSON", path, resp.StatusCode, len(body), resp.Header.Get("Content-Type"), StatusSize)
		}
		var v map[string]any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Errorf("GET %s: not JSON: %v", path, err)
		}
	}
	cancel()
	if err := <-served; err != nil {
		t.Errorf("Serve after cancel: %v", err)
	}
}

func TestBodyIsExactlyTheAskedSize(t *testing.T) {
	for _, size := range []int{StatusSize, 100, 512} {
		if got := len(Body(size)); got != size {
			t.Errorf("len(Body(%d)) = %d", size, got)
		}
	}
}
