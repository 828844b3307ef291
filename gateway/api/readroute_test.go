package api

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"wagate/gateway/session"
	"wagate/gateway/session/sessiontest"
)

// alwaysActive answers every isSessionActive with true.
type alwaysActive struct{}

func (alwaysActive) IsSessionActive(ctx context.Context, id string) (bool, error) { return true, nil }

// TestPolledReadsAnswerAsTheRouterDoes: the polled reads bypass ServeMux; for every request, the
// answer (status, headers, body) and the route pattern the metrics see are the router's.
func TestPolledReadsAnswerAsTheRouterDoes(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	m, err := session.New(context.Background(), session.Config{Logger: log}, sessiontest.NewDriver(), sessiontest.NewStore(), &sessiontest.Sink{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	for _, id := range []string{"shop_1", "qr"} {
		if _, err := m.Start(context.Background(), id); err != nil {
			t.Fatal(err)
		}
		for i := 0; ; i++ { // the fake driver shows the first QR code asynchronously
			if info, err := m.Get(context.Background(), id); err == nil && info.QR != "" {
				break
			} else if i == 500 {
				t.Fatalf("%s: no QR code after 5 s: %+v %v", id, info, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if _, err := m.Start(context.Background(), "idle"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Stop(context.Background(), "idle"); err != nil {
		t.Fatal(err)
	}
	const tok = "read-route-token"
	a, mux, err := newAPI(Config{Token: tok, Sessions: m, Reader: m, Activity: alwaysActive{}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	viaMux := a.recoverPanics(mux)
	viaReads := a.recoverPanics(a.routeReads(mux))

	type answer struct {
		code    int
		header  http.Header
		body    string
		pattern string
	}
	serve := func(h http.Handler, method, target, auth, accept string) answer {
		req := httptest.NewRequest(method, target, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return answer{rec.Code, rec.Header(), rec.Body.String(), req.Pattern}
	}
	bearer := "Bearer " + tok
	cases := []struct{ method, target, auth, accept string }{
		{"GET", "/sessions/shop_1", bearer, ""},
		{"HEAD", "/sessions/shop_1", bearer, ""},
		{"GET", "/sessions/shop_1", "bearer " + tok, "application/json"},
		{"GET", "/sessions/shop_1", "", ""},
		{"GET", "/sessions/shop_1", "Bearer wrong", ""},
		{"GET", "/sessions/unknown", bearer, ""},
		{"GET", "/sessions/qr", bearer, ""},
		{"GET", "/sessions/shop_1/qr", bearer, ""},
		{"GET", "/sessions/shop_1/qr?format=json", bearer, "image/png"},
		{"GET", "/sessions/shop_1/qr?format=png", bearer, ""},
		{"GET", "/sessions/shop_1/qr", bearer, "text/html, image/png;q=0.9"},
		{"HEAD", "/sessions/shop_1/qr", bearer, ""},
		{"GET", "/sessions/idle/qr", bearer, ""},
		{"GET", "/sessions/qr/qr", bearer, ""},
		{"GET", "/sessions/shop_1/qr", "", ""},
		{"GET", "/sessions/shop%5F1", bearer, ""},
		{"GET", "/sessions/shop_1/", bearer, ""},
		{"GET", "/sessions//qr", bearer, ""},
		{"GET", "/sessions/a.b", bearer, ""},
		{"GET", "/sessions/../sessions/shop_1", bearer, ""},
		{"GET", "/sessions/" + strings.Repeat("x", 65), bearer, ""},
		{"DELETE", "/sessions/unknown", bearer, ""},
		{"POST", "/sessions/shop_1/qr", bearer, ""},
	}
	// The fixture is what the cases assume: a session with a QR code to show.
	if got := serve(viaReads, "GET", "/sessions/shop_1/qr", bearer, ""); got.code != http.StatusOK || got.pattern != qrPattern {
		t.Fatalf("QR read: %d %q pattern %q", got.code, got.body, got.pattern)
	}
	if got := serve(viaReads, "GET", "/sessions/shop_1/qr?format=png", bearer, ""); got.header.Get("Content-Type") != "image/png" {
		t.Fatalf("PNG read: %d %v", got.code, got.header)
	}
	for _, c := range cases {
		want := serve(viaMux, c.method, c.target, c.auth, c.accept)
		got := serve(viaReads, c.method, c.target, c.auth, c.accept)
		if got.code != want.code || got.body != want.body || got.pattern != want.pattern || !equalHeaders(got.header, want.header) {
			t.Errorf("%s %s (auth %q, accept %q):\n got %d %v %q pattern %q\nwant %d %v %q pattern %q",
				c.method, c.target, c.auth, c.accept, got.code, got.header, got.body, got.pattern, want.code, want.header, want.body, want.pattern)
		}
	}
}

func equalHeaders(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if strings.Join(v, "\x00") != strings.Join(b[k], "\x00") {
			return false
		}
	}
	return true
}

func TestQREncodingMatchesEncodingJSON(t *testing.T) {
	at := time.Date(2026, 11, 27, 14, 5, 6, 123456789, time.UTC)
	cases := []qrJSON{
		{SessionID: "shop_1", QR: "2@Xy+/abc==,BASE64KEY+/=,AnotherKey=,ADV+/==", ExpiresAt: at},
		{SessionID: "s-2", QR: "2@<&>\"\\\u2028é", ExpiresAt: at.Truncate(time.Second)},
		{SessionID: "s3", QR: "2@x"},
	}
	for i, v := range cases {
		var want bytes.Buffer
		_ = json.NewEncoder(&want).Encode(v)
		rec := httptest.NewRecorder()
		writeQR(rec, 200, &v)
		if rec.Body.String() != want.String() {
			t.Errorf("case %d:\n got %s\nwant %s", i, rec.Body, want.String())
		}
		if rec.Header().Get("Content-Type") != "application/json" || rec.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("case %d: headers %v", i, rec.Header())
		}
	}
}

func TestTokenMatchesOnlyTheExactToken(t *testing.T) {
	const want = "s3cret-token-0123456789abcdef"
	cases := map[string]bool{
		want:                              true,
		"":                                false,
		want[:len(want)-1]:                false,
		want + "x":                        false,
		want + "\x00":                     false,
		"S3cret-token-0123456789abcdef":   false,
		strings.Repeat("\x00", len(want)): false,
	}
	for got, ok := range cases {
		if tokenMatches(got, want) != ok {
			t.Errorf("tokenMatches(%q) = %v, want %v", got, !ok, ok)
		}
	}
	if tokenMatches("x", "") || !tokenMatches("", "") {
		t.Error("an empty token matches only itself")
	}
}

func TestUTCTimesFormatAsRFC3339Nano(t *testing.T) {
	times := []time.Time{
		{},
		time.Date(2026, 11, 27, 14, 5, 6, 123456789, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 100_000_000, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 1, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
		time.Date(5, 6, 7, 8, 9, 10, 120_000, time.UTC),
		time.Unix(1700000000, 500).UTC(),
	}
	for _, tm := range times {
		if got, want := string(appendUTC(nil, tm)), tm.Format(time.RFC3339Nano); got != want {
			t.Errorf("got %s want %s", got, want)
		}
	}
}

func FuzzUTCTimesFormatAsRFC3339Nano(f *testing.F) {
	f.Add(int64(1700000000), int64(123456789))
	f.Add(int64(-62135596800), int64(0)) // year 1
	f.Fuzz(func(t *testing.T, sec, nsec int64) {
		tm := time.Unix(sec, nsec%1e9).UTC()
		if y := tm.Year(); y < 0 || y > 9999 {
			t.Skip()
		}
		if got, want := string(appendUTC(nil, tm)), tm.Format(time.RFC3339Nano); got != want {
			t.Fatalf("got %s want %s", got, want)
		}
	})
}
