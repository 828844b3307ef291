package legacy

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"wagate/gateway/event"
	"wagate/gateway/laravel"
)

type fakeLaravel struct {
	mu       sync.Mutex
	requests []string
	sessions map[string]laravel.SessionInfo
	fail     int
}

func (f *fakeLaravel) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var body map[string]any
	_ = json.NewDecoder(r.Body).Decode(&body)
	line := r.Method + " " + r.URL.Path
	if v, ok := body["qr"]; ok {
		line += " qr=" + v.(string)
	}
	if v, ok := body["estado_qr"]; ok {
		line += " estado_qr=" + v.(string)
	}
	f.requests = append(f.requests, line)
	if f.fail != 0 {
		w.WriteHeader(f.fail)
		return
	}
	if strings.HasPrefix(r.URL.Path, laravel.PathSessionPrefix) {
		info, ok := f.sessions[strings.TrimPrefix(r.URL.Path, laravel.PathSessionPrefix)]
		if !ok {
			w.WriteHeader(404)
			_, _ = w.Write([]byte(`{"message":"not found"}`))
			return
		}
		_ = json.NewEncoder(w).Encode(info)
		return
	}
	_, _ = w.Write([]byte(`{"success":true}`))
}

func (f *fakeLaravel) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

func newRig(t *testing.T) (*fakeLaravel, *laravel.Client) {
	f := &fakeLaravel{sessions: map[string]laravel.SessionInfo{
		"on":  {SessionID: "on", EstadoQR: laravel.StatusConnected, Enabled: true, Active: true},
		"off": {SessionID: "off", EstadoQR: laravel.StatusDisconnected, Enabled: true},
	}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := laravel.NewClient(laravel.ClientConfig{BaseURL: srv.URL, Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	return f, c
}

func ev(kind event.Kind, payload string, v int64) event.Event {
	return event.Event{ID: "e", SessionID: "s1", Kind: kind, Payload: payload, Time: time.Now(), Version: v,
		Priority: event.PriorityOf(kind, payload)}
}

func TestEveryEventIsOneRequestToTheLegacyEndpoint(t *testing.T) {
	f, c := newRig(t)
	d := New(c)
	ctx := context.Background()
	for _, e := range []event.Event{ev(event.KindStatus, "pending", 1), ev(event.KindQR, "2@abc", 2), ev(event.KindStatus, "connected", 3)} {
		if err := d.Deliver(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{
		"POST /api/whatsapp/status estado_qr=pending",
		"POST /api/qr qr=2@abc",
		"POST /api/whatsapp/status estado_qr=connected",
	}
	if got := f.log(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("requests:\n%s", strings.Join(got, "\n"))
	}
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestFailuresAreReturnedNotRetried(t *testing.T) {
	f, c := newRig(t)
	f.fail = 503
	err := New(c).Deliver(context.Background(), ev(event.KindStatus, "connected", 1))
	var se *laravel.StatusError
	if !errors.As(err, &se) || se.Status != 503 {
		t.Fatalf("err %v", err)
	}
	if n := len(f.log()); n != 1 {
		t.Fatalf("%d requests, want exactly 1 (legacy does not retry)", n)
	}
}

func TestInvalidEventsAreRejectedWithoutARequest(t *testing.T) {
	f, c := newRig(t)
	if err := New(c).Deliver(context.Background(), ev(event.KindStatus, "bogus", 1)); err == nil {
		t.Fatal("accepted an invalid event")
	}
	if len(f.log()) != 0 {
		t.Fatal("sent an invalid event")
	}
}

func TestIsSessionActiveAsksLaravelOnEveryCall(t *testing.T) {
	f, c := newRig(t)
	a := NewActivityChecker(c)
	ctx := context.Background()
	for range 3 {
		if ok, err := a.IsSessionActive(ctx, "on"); err != nil || !ok {
			t.Fatalf("on: %v %v", ok, err)
		}
	}
	if ok, err := a.IsSessionActive(ctx, "off"); err != nil || ok {
		t.Fatalf("off: %v %v", ok, err)
	}
	if ok, err := a.IsSessionActive(ctx, "unknown"); err != nil || ok {
		t.Fatalf("unknown: %v %v", ok, err)
	}
	if n := len(f.log()); n != 5 {
		t.Fatalf("%d lookups for 5 calls: legacy must not cache", n)
	}
	f.fail = 500
	if _, err := a.IsSessionActive(ctx, "on"); err == nil {
		t.Fatal("a Laravel error must surface")
	}
}
