package api_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"wagate/gateway/api"
)

// What a hop costs: GET /sessions/{id} over loopback HTTP answered by the holder directly, and
// the same read sent to another replica that forwards it (ForwardReads; starts, sends and logouts
// take the same path). One keep-alive client; both servers in this process.
//
//	go test ./gateway/api -run '^$' -bench ForwardedRead -benchmem
func BenchmarkForwardedRead(b *testing.B) {
	log := slog.New(slog.DiscardHandler)
	newServer := func(loc *locator) *httptest.Server {
		m := benchSessions(b, log)
		h, err := api.New(api.Config{Token: token, Sessions: m, Reader: m, Activity: &activity{active: map[string]bool{"shop_1": true}},
			Logger: log, Locator: loc, ForwardReads: true, RateLimit: api.RateLimit{Disabled: true}})
		if err != nil {
			b.Fatal(err)
		}
		srv := httptest.NewServer(h)
		b.Cleanup(srv.Close)
		return srv
	}
	holder := newServer(&locator{where: map[string]api.Location{"shop_1": {Self: true}}})
	entry := newServer(&locator{where: map[string]api.Location{"shop_1": {URL: holder.URL}}})
	for _, c := range []struct{ name, base string }{{"direct", holder.URL}, {"forwarded", entry.URL}} {
		b.Run(c.name, func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			req, _ := http.NewRequest("GET", c.base+"/sessions/shop_1", nil)
			req.Header.Set("Authorization", "Bearer "+token)
			b.ReportAllocs()
			for b.Loop() {
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("%d", resp.StatusCode)
				}
			}
		})
	}
}
